"""Writing OpenAI responses: `chat.completion`, `chat.completion.chunk`, usage and embedding lists.

The shapes follow what api.openai.com returns, including `null`s the SDKs expect to find (`logprobs`, `refusal`).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

JsonObject = dict[str, Any]


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    total_tokens: int | None = None,
    *,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> JsonObject:
    result: JsonObject = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens if total_tokens is None else total_tokens,
    }
    if cached_tokens is not None:
        result["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    if reasoning_tokens is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return result


def tool_call(call_id: str, name: str, arguments: str, extra_content: JsonObject | None = None) -> JsonObject:
    result: JsonObject = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    if extra_content:
        result["extra_content"] = extra_content
    return result


def choice(index: int, text: str, calls: list[JsonObject], finish_reason: str) -> JsonObject:
    # OpenAI sends `content: null` for a reply made only of tool calls, and "" for an empty reply.
    message: JsonObject = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}


def completion(
    *, completion_id: str, created: int, model: str, choices: list[JsonObject], usage: JsonObject | None
) -> JsonObject:
    result: JsonObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        result["usage"] = usage
    return result


@dataclass(frozen=True)
class ChunkWriter:
    """Builds the `chat.completion.chunk` objects of one streamed completion."""

    completion_id: str
    created: int
    model: str

    def _chunk(self, choices: list[JsonObject], **extra: Any) -> JsonObject:
        base: JsonObject = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        return {**base, **extra}

    def delta(self, delta: JsonObject, index: int = 0, finish_reason: str | None = None) -> JsonObject:
        return self._chunk([{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}])

    def role(self, index: int = 0) -> JsonObject:
        return self.delta({"role": "assistant", "content": ""}, index)

    def content(self, text: str, index: int = 0) -> JsonObject:
        return self.delta({"content": text}, index)

    def tool_call_start(
        self, position: int, call_id: str, name: str, index: int = 0, extra_content: JsonObject | None = None
    ) -> JsonObject:
        call = {"index": position, **tool_call(call_id, name, "", extra_content)}
        return self.delta({"tool_calls": [call]}, index)

    def tool_call_arguments(self, position: int, fragment: str, index: int = 0) -> JsonObject:
        return self.delta({"tool_calls": [{"index": position, "function": {"arguments": fragment}}]}, index)

    def finish(self, finish_reason: str, index: int = 0) -> JsonObject:
        return self.delta({}, index, finish_reason)

    def usage(self, usage: JsonObject) -> JsonObject:
        # The usage chunk of `stream_options.include_usage`: no choices, after the finish chunk.
        return self._chunk([], usage=usage)


def _encode(vector: Sequence[float], encoding_format: Literal["float", "base64"]) -> list[float] | str:
    if encoding_format == "float":
        return list(vector)
    # OpenAI's base64 form is little-endian float32, which the openai SDK decodes with numpy.frombuffer.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_list(
    model: str,
    vectors: Sequence[Sequence[float]],
    prompt_tokens: int,
    encoding_format: Literal["float", "base64"] = "float",
) -> JsonObject:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
