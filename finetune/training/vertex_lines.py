"""OpenAI fine-tuning examples -> Vertex AI Gemini supervised-tuning lines.

A Gemini tuning example is a `generateContent` body cut down to `{"systemInstruction": {"parts"}, "contents":
[{"role": "user"|"model", "parts": [...]}], "tools"?}`; a part holds `text` or `fileData {mimeType, fileUri}` (media
referenced in Cloud Storage), and function calling is trained through `functionCall` / `functionResponse` parts and
the example's `tools`. The mapping is the gateway's own chat->Gemini translation (`gemini_request.chat_to_gemini`:
system/developer -> systemInstruction, assistant -> model, tool results -> functionResponse in a user turn, same-role
turns merged), then narrowed to what a dataset may hold:

- media must be a `gs://` file: Vertex reads tuning media from Cloud Storage, so `data:` URLs, `file` parts and
  `input_audio` (which the translation inlines) and `https:` URLs are refused;
- the thought-signature placeholder the translation adds for live Gemini 3 calls is dropped (a dataset is not a
  live conversation);
- `weight: 0` is refused (Gemini trains on every model turn), and an example must keep a non-empty `model` turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune.training.errors import bad_line
from finetune.training.examples import require_shape
from providers.translate.errors import TranslationError
from providers.translate.gemini_request import chat_to_gemini

TARGET = "Vertex Gemini tuning"
_SHAPES = frozenset({"chat", "prompt/completion"})
# The request fields of chat_to_gemini's output that a tuning example keeps.
_KEPT = ("systemInstruction", "contents", "tools")


@dataclass(frozen=True)
class GeminiLineConverter:
    method: str

    def convert(self, line_no: int, example: dict[str, Any]) -> dict[str, Any]:
        shape = require_shape(line_no, example, self.method, _SHAPES, TARGET)
        messages = _messages(line_no, example, shape)
        request: dict[str, Any] = {"messages": messages}
        if example.get("tools"):
            request["tools"] = example["tools"]
        try:
            body = chat_to_gemini(request)
        except TranslationError as problem:
            raise bad_line(line_no, f"{problem.message} ({problem.param})") from None
        line = {key: body[key] for key in _KEPT if key in body}
        for turn in line["contents"]:
            for part in turn["parts"]:
                _check_part(line_no, part)
        if not any(turn["role"] == "model" for turn in line["contents"]):
            raise bad_line(line_no, f"no assistant reply with content is left for {TARGET} to learn from")
        return line


def _messages(line_no: int, example: dict[str, Any], shape: str) -> list[dict[str, Any]]:
    if shape == "prompt/completion":
        return [{"role": "user", "content": example["prompt"]}, {"role": "assistant", "content": example["completion"]}]
    if example.get("functions"):
        raise bad_line(line_no, "the legacy 'functions' list is not converted; declare them in 'tools'")
    messages: list[dict[str, Any]] = example["messages"]
    for index, message in enumerate(messages):
        if message.get("weight") == 0:
            raise bad_line(line_no, f"messages[{index}] has weight 0; {TARGET} trains on every model turn")
        if message.get("function_call") or message["role"] == "function":
            raise bad_line(line_no, f"messages[{index}] uses legacy function calling; use tool_calls and tool")
    return messages


def _check_part(line_no: int, part: dict[str, Any]) -> None:
    part.pop("thoughtSignature", None)
    if "inlineData" in part:
        raise bad_line(
            line_no,
            f"{TARGET} reads media from Cloud Storage only; reference it by a gs:// image URL "
            "instead of inline data, files or audio",
        )
    file_uri = part.get("fileData", {}).get("fileUri")
    if isinstance(file_uri, str) and not file_uri.startswith("gs://"):
        raise bad_line(line_no, f"{TARGET} reads media from Cloud Storage only; {file_uri!r} is not a gs:// URI")
