"""Vertex Gemini `GenerateContentResponse`s → OpenAI `chat.completion`, and the SSE stream → `chat.completion.chunk`s.

- Candidates become choices. Thought parts (`thought: true`, reasoning summaries) are left out of the content.
- Gemini's function calls have no ids: each gets `call_<n>`, numbered from 0 within one response, in order. Ids
  repeat across the turns of a conversation; `chat_to_gemini` pairs a tool result with the latest call of its id,
  which is the one it answers. A call's thought signature rides along as `extra_content.google.thought_signature`.
- Gemini says STOP when it stops to call a function; OpenAI says "tool_calls", so a choice with calls finishing
  with STOP reports "tool_calls".
- A prompt blocked before generation (no candidates, `promptFeedback.blockReason`) is one empty choice finishing
  with "content_filter".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from providers.translate import openai_response as res
from providers.translate.openai_response import ChunkWriter, JsonObject

_FILTERED = "content_filter"
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": _FILTERED,
    "RECITATION": _FILTERED,
    "BLOCKLIST": _FILTERED,
    "PROHIBITED_CONTENT": _FILTERED,
    "SPII": _FILTERED,
    "IMAGE_SAFETY": _FILTERED,
}


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    # OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED and reasons added later have no OpenAI counterpart.
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


def chat_usage(metadata: JsonObject) -> JsonObject:
    # Thinking tokens are billed as output: OpenAI counts reasoning tokens inside completion_tokens.
    thoughts = metadata.get("thoughtsTokenCount")
    completion = int(metadata.get("candidatesTokenCount", 0)) + int(thoughts or 0)
    cached = metadata.get("cachedContentTokenCount")
    return res.usage(
        int(metadata.get("promptTokenCount", 0)),
        completion,
        metadata.get("totalTokenCount"),
        cached_tokens=None if cached is None else int(cached),
        reasoning_tokens=None if thoughts is None else int(thoughts),
    )


def _parts(candidate: JsonObject) -> list[JsonObject]:
    parts = (candidate.get("content") or {}).get("parts") or []
    return [part for part in parts if isinstance(part, dict)]


def _visible_text(part: JsonObject) -> str:
    text = part.get("text")
    return text if isinstance(text, str) and not part.get("thought") else ""


def _tool_call(part: JsonObject, call_id: str) -> JsonObject:
    function_call = part["functionCall"]
    signature = part.get("thoughtSignature")
    extra = {"google": {"thought_signature": signature}} if isinstance(signature, str) else None
    arguments = json.dumps(function_call.get("args") or {}, ensure_ascii=False)
    return res.tool_call(call_id, function_call["name"], arguments, extra)


def _call_ids() -> Iterator[str]:
    return (f"call_{number}" for number in itertools.count())


def _choice(candidate: JsonObject, position: int, call_ids: Iterator[str]) -> JsonObject:
    parts = _parts(candidate)
    text = "".join(_visible_text(part) for part in parts)
    calls = [_tool_call(part, next(call_ids)) for part in parts if "functionCall" in part]
    reason = finish_reason(candidate.get("finishReason"), bool(calls))
    return res.choice(candidate.get("index", position), text, calls, reason)


def _blocked(response: JsonObject) -> bool:
    return bool((response.get("promptFeedback") or {}).get("blockReason"))


def gemini_to_chat(response: JsonObject, *, model: str, completion_id: str, created: int) -> JsonObject:
    call_ids = _call_ids()
    candidates = response.get("candidates") or []
    choices = [_choice(candidate, position, call_ids) for position, candidate in enumerate(candidates)]
    if not choices:
        choices = [res.choice(0, "", [], _FILTERED if _blocked(response) else "stop")]
    metadata = response.get("usageMetadata")
    return res.completion(
        completion_id=completion_id,
        created=created,
        model=model,
        choices=choices,
        usage=chat_usage(metadata) if isinstance(metadata, dict) else None,
    )


class GeminiStreamTranslator:
    """Turns the SSE payloads of `streamGenerateContent?alt=sse` (each a GenerateContentResponse) into OpenAI chunks.

    Gemini sends a function call whole, in one part; it streams out as OpenAI streams calls: a chunk with id, name
    and empty arguments, then one with the arguments. usageMetadata is cumulative: the usage chunk (when
    `include_usage`) goes out once every started choice has finished, from the latest usageMetadata.
    """

    def __init__(self, model: str, completion_id: str, created: int, *, include_usage: bool = False) -> None:
        self._writer = ChunkWriter(completion_id, created, model)
        self._include_usage = include_usage
        self._call_ids = _call_ids()
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tool_counts: dict[int, int] = {}
        self._usage: JsonObject | None = None
        self._usage_sent = False

    def feed(self, chunk: JsonObject) -> list[JsonObject]:
        chunks: list[JsonObject] = []
        candidates = chunk.get("candidates") or []
        for position, candidate in enumerate(candidates):
            chunks.extend(self._candidate(candidate.get("index", position), candidate))
        if not candidates and _blocked(chunk):
            chunks.extend([*self._open(0), self._finish(0, _FILTERED)])
        metadata = chunk.get("usageMetadata")
        if isinstance(metadata, dict):
            self._usage = metadata
        return chunks + self._usage_chunk()

    def _open(self, index: int) -> list[JsonObject]:
        if index in self._started:
            return []
        self._started.add(index)
        return [self._writer.role(index)]

    def _finish(self, index: int, reason: str) -> JsonObject:
        self._finished.add(index)
        return self._writer.finish(reason, index)

    def _candidate(self, index: int, candidate: JsonObject) -> list[JsonObject]:
        chunks = self._open(index)
        for part in _parts(candidate):
            chunks.extend(self._part(index, part))
        reason = candidate.get("finishReason")
        if reason:
            chunks.append(self._finish(index, finish_reason(reason, self._tool_counts.get(index, 0) > 0)))
        return chunks

    def _part(self, index: int, part: JsonObject) -> list[JsonObject]:
        if "functionCall" in part:
            position = self._tool_counts.get(index, 0)
            self._tool_counts[index] = position + 1
            call = _tool_call(part, next(self._call_ids))
            function = call["function"]
            start = self._writer.tool_call_start(
                position, call["id"], function["name"], index, call.get("extra_content")
            )
            return [start, self._writer.tool_call_arguments(position, function["arguments"], index)]
        text = _visible_text(part)
        return [self._writer.content(text, index)] if text else []

    def _usage_chunk(self) -> list[JsonObject]:
        done = bool(self._started) and self._finished >= self._started
        if not self._include_usage or self._usage_sent or self._usage is None or not done:
            return []
        self._usage_sent = True
        return [self._writer.usage(chat_usage(self._usage))]
