"""Reading one OpenAI fine-tuning example into a neutral conversation the Bedrock formats are rendered from.

The example was checked at upload (`files/jsonl.py`), so its shape is one of chat, preference or prompt/completion
and its messages have known roles. What is refused here is what a non-OpenAI target cannot express:

- `tool` / `function` messages, assistant `tool_calls`, and a `tools` list (Bedrock's fine-tuning formats carry
  none of them);
- `weight: 0` on an assistant message: OpenAI then skips that reply in the loss, and no other format can say so
  (`weight: 1` is the default everywhere and is dropped);
- content parts other than text (and `image_url`, which a target may take by S3 URL), and messages left with no
  text at all, since the targets refuse empty content.

Consecutive messages of one role are merged into one turn, because Bedrock's conversation formats require user and
assistant turns to alternate; `system` and `developer` messages become the system prompt wherever they sit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from files.jsonl import FINE_TUNE_SHAPES
from finetune.training.errors import bad_line

# Which example shapes each method trains on.
SHAPES_FOR_METHOD: dict[str, frozenset[str]] = {
    "supervised": frozenset({"chat", "prompt/completion"}),
    "dpo": frozenset({"preference"}),
}


@dataclass(frozen=True)
class Block:
    kind: Literal["text", "image"]
    value: str  # the text, or the image's URL


@dataclass
class Turn:
    role: Literal["user", "assistant"]
    blocks: list[Block] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join(block.value for block in self.blocks if block.kind == "text")


@dataclass
class Conversation:
    system: list[str]
    turns: list[Turn]


def example_shape(example: dict[str, Any]) -> str:
    """`chat`, `preference` or `prompt/completion`, as the upload validator names them (first match wins)."""
    for shape, (keys, _) in FINE_TUNE_SHAPES.items():
        if not example.keys().isdisjoint(keys):
            return shape
    return "unknown"


def require_shape(line_no: int, example: dict[str, Any], method: str, shapes: frozenset[str], target: str) -> str:
    """The example's shape, if `target` trains `method` on it."""
    shape = example_shape(example)
    if shape not in SHAPES_FOR_METHOD.get(method, frozenset()):
        expected = " or ".join(sorted(SHAPES_FOR_METHOD.get(method, frozenset())))
        raise bad_line(line_no, f"a {shape} example in a {method} file; {method} trains on {expected} examples")
    if shape not in shapes:
        raise bad_line(line_no, f"{target} does not train on {shape} examples; use {' or '.join(sorted(shapes))}")
    return shape


def conversation_of(line_no: int, example: dict[str, Any], target: str) -> Conversation:
    """The example as system texts plus alternating turns that start with the user and end with the assistant."""
    if example_shape(example) == "prompt/completion":
        prompt, completion = str(example["prompt"]), str(example["completion"])
        return _checked(line_no, Conversation([], [_turn("user", prompt), _turn("assistant", completion)]), target)
    if example.get("tools") or example.get("functions"):
        raise bad_line(line_no, f"{target} fine-tuning data has no tool definitions; remove 'tools'")
    conversation = Conversation([], [])
    for index, message in enumerate(example["messages"]):
        _READERS[message["role"]](line_no, f"messages[{index}]", message, conversation, target)
    return _checked(line_no, conversation, target)


def _turn(role: Literal["user", "assistant"], text: str) -> Turn:
    return Turn(role, [Block("text", text)] if text.strip() else [])


def _checked(line_no: int, conversation: Conversation, target: str) -> Conversation:
    turns = conversation.turns
    for turn in turns:
        if not turn.blocks:
            raise bad_line(line_no, f"a {turn.role} message has no text; {target} refuses empty content")
    if not turns or turns[0].role != "user":
        raise bad_line(line_no, f"{target} needs the conversation to start with a user message")
    if turns[-1].role != "assistant":
        raise bad_line(line_no, f"{target} needs the conversation to end with the assistant's reply to learn from")
    return conversation


def _append(conversation: Conversation, role: Literal["user", "assistant"], blocks: list[Block]) -> None:
    turns = conversation.turns
    if turns and turns[-1].role == role:
        turns[-1].blocks.extend(blocks)
    else:
        turns.append(Turn(role, blocks))


def _read_system(line_no: int, where: str, message: dict[str, Any], conversation: Conversation, target: str) -> None:
    blocks = _blocks(line_no, where, message, ("text",), target)
    conversation.system.extend(block.value for block in blocks)


def _read_user(line_no: int, where: str, message: dict[str, Any], conversation: Conversation, target: str) -> None:
    _append(conversation, "user", _non_empty(line_no, where, message, ("text", "image_url"), target))


def _read_assistant(line_no: int, where: str, message: dict[str, Any], conversation: Conversation, target: str) -> None:
    if message.get("tool_calls") or message.get("function_call"):
        raise bad_line(line_no, f"{where} calls tools; {target} fine-tuning data cannot carry tool calls")
    if message.get("weight") == 0:
        raise bad_line(line_no, f"{where} has weight 0; {target} trains on every assistant reply and has no weights")
    _append(conversation, "assistant", _non_empty(line_no, where, message, ("text", "refusal"), target))


def _refuse_tool(line_no: int, where: str, message: dict[str, Any], _: Conversation, target: str) -> None:
    role = message["role"]
    raise bad_line(line_no, f"{where} is a {role} message; {target} fine-tuning data cannot carry tool results")


_READERS: dict[str, Callable[[int, str, dict[str, Any], Conversation, str], None]] = {
    "system": _read_system,
    "developer": _read_system,
    "user": _read_user,
    "assistant": _read_assistant,
    "tool": _refuse_tool,
    "function": _refuse_tool,
}


def _non_empty(line_no: int, where: str, message: dict[str, Any], kinds: tuple[str, ...], target: str) -> list[Block]:
    blocks = _blocks(line_no, where, message, kinds, target)
    if not blocks:
        raise bad_line(line_no, f"{where} has no text; {target} refuses empty messages")
    return blocks


def _blocks(line_no: int, where: str, message: dict[str, Any], kinds: tuple[str, ...], target: str) -> list[Block]:
    """The message's non-blank text and image blocks; any other part kind is refused, naming it."""
    content = message.get("content")
    parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
    blocks: list[Block] = []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part, dict):
            raise bad_line(line_no, f"{where}.content[{index}] is a {kind!r} part; {target} takes {', '.join(kinds)}")
        blocks.extend(_block(line_no, f"{where}.content[{index}]", kind, part))
    return blocks


def _block(line_no: int, where: str, kind: str, part: dict[str, Any]) -> list[Block]:
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise bad_line(line_no, f"{where}.image_url.url must be a string")
        return [Block("image", url)]
    text = part.get(kind)  # `text`, or `refusal` for a refusal part
    if not isinstance(text, str):
        raise bad_line(line_no, f"{where}.{kind} must be a string")
    return [Block("text", text)] if text.strip() else []
