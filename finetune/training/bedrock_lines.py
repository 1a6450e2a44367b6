"""OpenAI fine-tuning examples -> the training line of each Bedrock model family (FINE_TUNING jobs, supervised).

Formats, per AWS's data-preparation guides:

- Amazon Nova and Llama 3.2 Vision: the `bedrock-conversation-2024` schema, `{"schemaVersion",
  "system": [{"text"}], "messages": [{"role": "user"|"assistant", "content": [{"text"} | {"image"}]}]}`. Multi-turn
  conversations are allowed; turns alternate, start with the user and end with the assistant. Images are read from
  S3 only (`{"image": {"format", "source": {"s3Location": {"uri"}}}}`, format png/jpeg/gif/webp), so an OpenAI
  `image_url` must already be an `s3://` URL; `data:` and `https:` images are refused. Nova Micro is text-only:
  Bedrock itself refuses its images, Portico does not second-guess per model.
- Claude 3 Haiku: `{"system": "<text>", "messages": [{"role", "content": "<text>"}]}` with string contents, user
  first, assistant last, alternating, and no other keys; text only.
- Titan Text and Llama 3.1/3.2 text models: one `{"prompt", "completion"}` pair a line, so a chat example must be a
  single exchange; its system prompt is put before the user's text (these models have no system slot).

What any Bedrock format cannot carry (tools, tool results, per-message weights) is refused by `examples`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finetune.training.errors import bad_line
from finetune.training.examples import Block, Conversation, conversation_of, require_shape

SCHEMA_VERSION = "bedrock-conversation-2024"
# Image formats Bedrock's conversation schema names, by file extension.
IMAGE_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
_SUPERVISED_SHAPES = frozenset({"chat", "prompt/completion"})


@dataclass(frozen=True)
class BedrockFormat:
    """How one family's line is rendered, and what it accepts beyond text."""

    target: str  # names the family in refusals, e.g. "Bedrock Nova"
    render: Callable[[int, Conversation, str], dict[str, Any]]
    images: bool = False
    single_exchange: bool = False


@dataclass(frozen=True)
class BedrockLineConverter:
    format: BedrockFormat
    method: str

    def convert(self, line_no: int, example: dict[str, Any]) -> dict[str, Any]:
        target = self.format.target
        shape = require_shape(line_no, example, self.method, _SUPERVISED_SHAPES, target)
        if shape == "prompt/completion" and self.format.single_exchange:
            # Already the target's own format: pass the pair through, dropping nothing but unknown keys.
            return {"prompt": example["prompt"], "completion": example["completion"]}
        conversation = conversation_of(line_no, example, target)
        if self.format.single_exchange and len(conversation.turns) > 2:
            raise bad_line(
                line_no,
                f"{target} trains on one prompt and one completion; this example has {len(conversation.turns)} turns",
            )
        if not self.format.images:
            _refuse_images(line_no, conversation, target)
        return self.format.render(line_no, conversation, target)


def _refuse_images(line_no: int, conversation: Conversation, target: str) -> None:
    if any(block.kind == "image" for turn in conversation.turns for block in turn.blocks):
        raise bad_line(line_no, f"{target} fine-tunes on text only; remove the image_url parts")


def _conversation_line(line_no: int, conversation: Conversation, target: str) -> dict[str, Any]:
    line: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if conversation.system:
        line["system"] = [{"text": text} for text in conversation.system]
    line["messages"] = [
        {"role": turn.role, "content": [_content_block(line_no, block, target) for block in turn.blocks]}
        for turn in conversation.turns
    ]
    return line


def _content_block(line_no: int, block: Block, target: str) -> dict[str, Any]:
    if block.kind == "text":
        return {"text": block.value}
    url = block.value
    if not url.startswith("s3://"):
        scheme = url.split(":", 1)[0] if ":" in url else "a relative URL"
        raise bad_line(
            line_no,
            f"{target} reads training images from S3 only; upload the image and use its s3:// URL instead of {scheme}",
        )
    extension = url.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    image_format = IMAGE_FORMATS.get(extension)
    if image_format is None:
        raise bad_line(line_no, f"{target} takes png, jpeg, gif or webp images; cannot tell the format of {url!r}")
    return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}


def _claude_line(_: int, conversation: Conversation, __: str) -> dict[str, Any]:
    line: dict[str, Any] = {}
    if conversation.system:
        line["system"] = "\n\n".join(conversation.system)
    line["messages"] = [{"role": turn.role, "content": turn.text()} for turn in conversation.turns]
    return line


def _prompt_completion_line(_: int, conversation: Conversation, __: str) -> dict[str, Any]:
    user, assistant = conversation.turns
    return {"prompt": "\n\n".join([*conversation.system, user.text()]), "completion": assistant.text()}


_CONVERSATION = BedrockFormat("Bedrock Nova", _conversation_line, images=True)
FORMATS: dict[str, BedrockFormat] = {
    "nova": _CONVERSATION,
    "llama-vision": BedrockFormat("Bedrock Llama 3.2 Vision", _conversation_line, images=True),
    "anthropic": BedrockFormat("Bedrock Claude 3 Haiku", _claude_line),
    "titan-text": BedrockFormat("Bedrock Titan Text", _prompt_completion_line, single_exchange=True),
    "llama": BedrockFormat("Bedrock Llama", _prompt_completion_line, single_exchange=True),
}
