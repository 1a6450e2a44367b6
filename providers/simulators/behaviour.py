"""The deterministic behaviour every simulator shares, on a vendor-neutral view of a request.

Each vendor module turns its wire request into a `Prompt` (turns and declared tools), asks `respond` for a `Reply`
and writes that reply back in its own wire format. Because the content is decided here, once, a gateway that
translates correctly returns the same OpenAI-shaped result whichever vendor served the request:

- a chat reply is ``"Simulated reply to: "`` + the last user text (whitespace collapsed, first 200 characters);
- if tools are declared and the last turn is the user's, the reply is one call to the first declared tool, with each
  required parameter set from its JSON-schema type (see `SAMPLE_BY_TYPE`);
- if the last turn is a tool result, the reply is ``"Tool result received: "`` + that result's text (collapsed, 200);
- prompt tokens count the words of every turn (tool-call arguments excluded), completion tokens the reply's words
  (one per argument for a tool call);
- embeddings are sha256-derived vectors of each input string.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

CLIP = 200
REPLY_PREFIX = "Simulated reply to: "
TOOL_RESULT_PREFIX = "Tool result received: "
DEFAULT_DIMENSIONS = 8

Role = Literal["system", "user", "assistant", "tool"]


class Finish(StrEnum):
    """Why a reply ended, before each vendor names it in its own vocabulary."""

    STOP = "stop"
    TOOL_CALL = "tool_call"
    LENGTH = "length"


@dataclass(frozen=True)
class Turn:
    """One message's text. Tool results are their own role; tool-call arguments are never included."""

    role: Role
    text: str


@dataclass(frozen=True)
class Tool:
    name: str
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    turns: Sequence[Turn]
    tools: Sequence[Tool] = ()
    # The caller's output cap (max_tokens, maxTokens, maxOutputTokens): a longer reply is cut to that many words.
    max_tokens: int | None = None


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def arguments_json(self) -> str:
        # Serialised as Portico's translators serialise a Bedrock `input` or Gemini `args` object (json.dumps with
        # its default separators), so the OpenAI simulator's `arguments` string is byte-identical to theirs.
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Reply:
    text: str
    tool_call: ToolCall | None
    finish: Finish
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def message_turns(role: Role, blocks: Iterable[Turn]) -> list[Turn]:
    """One message's blocks in order: adjacent text blocks joined by a space (as an OpenAI message's text parts
    are), tool results kept as their own turns. A message without text or results is one empty turn."""
    turns: list[Turn] = []
    texts: list[str] = []
    for block in blocks:
        if block.role != "tool":
            texts.append(block.text)
            continue
        if texts:
            turns.append(Turn(role, " ".join(texts)))
            texts = []
        turns.append(block)
    if texts or not turns:
        turns.append(Turn(role, " ".join(texts)))
    return turns


def structured_text(value: object) -> str:
    """The text of a structured tool result (a Bedrock ``json`` block, a Gemini ``functionResponse.response``)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def collapse(text: str, limit: int = CLIP) -> str:
    return " ".join(text.split())[:limit]


def count_words(text: str) -> int:
    return len(text.split())


def respond(prompt: Prompt) -> Reply:
    prompt_tokens = sum(count_words(turn.text) for turn in prompt.turns)
    last = prompt.turns[-1] if prompt.turns else None
    if last is not None and last.role == "tool":
        return _text_reply(TOOL_RESULT_PREFIX + collapse(last.text), prompt_tokens, prompt.max_tokens)
    if prompt.tools and last is not None and last.role == "user":
        call = ToolCall(prompt.tools[0].name, sample_arguments(prompt.tools[0].schema))
        return Reply("", call, Finish.TOOL_CALL, prompt_tokens, len(call.arguments))
    asked = next((turn.text for turn in reversed(prompt.turns) if turn.role == "user"), "")
    return _text_reply(REPLY_PREFIX + collapse(asked), prompt_tokens, prompt.max_tokens)


def complete(text: str, max_tokens: int | None = None) -> Reply:
    """A legacy text completion: the prompt is treated as a single user turn."""
    return respond(Prompt([Turn("user", text)], max_tokens=max_tokens))


def _text_reply(text: str, prompt_tokens: int, max_tokens: int | None) -> Reply:
    words = text.split()
    if max_tokens is not None and 0 <= max_tokens < len(words):
        cut = " ".join(words[:max_tokens])
        return Reply(cut, None, Finish.LENGTH, prompt_tokens, count_words(cut))
    return Reply(text, None, Finish.STOP, prompt_tokens, count_words(text))


# A fresh value per call (lists and dicts are mutable), keyed by JSON-schema type; Gemini writes types upper-case.
SAMPLE_BY_TYPE: dict[str, Callable[[], Any]] = {
    "string": lambda: "sim",
    "integer": lambda: 1,
    "number": lambda: 1.5,
    "boolean": lambda: True,
    "array": list,
    "object": dict,
    "null": lambda: None,
}


def sample_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or ():
        prop = properties.get(name) or {}
        arguments[str(name)] = SAMPLE_BY_TYPE.get(_schema_type(prop), SAMPLE_BY_TYPE["string"])()
    return arguments


def _schema_type(prop: Mapping[str, Any]) -> str:
    declared = prop.get("type", "string")
    if isinstance(declared, list):  # ["string", "null"]: the first non-null type
        declared = next((kind for kind in declared if str(kind).lower() != "null"), "null")
    return str(declared).lower()


def embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A vector in [-1, 1]^dimensions that depends only on `text`: 4-byte words of sha256(counter:text)."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        for offset in range(0, len(digest), 4):
            word = int.from_bytes(digest[offset : offset + 4], "big")
            values.append(round(word / 0xFFFFFFFF * 2 - 1, 6))
        block += 1
    return values[:dimensions]


def word_deltas(text: str) -> list[str]:
    """Each word with the whitespace after it, so ``"".join(word_deltas(t)) == t``."""
    pieces = re.findall(r"\S+\s*", text)
    leading = text[: len(text) - len(text.lstrip())]
    if not pieces:
        return [text] if text else []
    return [leading + pieces[0], *pieces[1:]]


def dimensions_of(value: object, default: int = DEFAULT_DIMENSIONS) -> int:
    """A requested vector size, or the default; refuses sizes that are not positive integers."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 8192:
        raise InvalidRequest(f"dimensions must be an integer between 1 and 8192, got {value!r}")
    return value


class InvalidRequest(ValueError):
    """The request cannot be served as sent; each simulator answers 400 in its vendor's error shape."""
