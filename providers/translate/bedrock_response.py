"""Bedrock Converse responses and ConverseStream events → OpenAI `chat.completion` and `chat.completion.chunk`.

Only text and toolUse blocks reach the OpenAI message: reasoningContent and citations have no chat-completions field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from providers.translate import openai_response as res
from providers.translate.openai_response import ChunkWriter, JsonObject

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    # malformed_model_output / malformed_tool_use and reasons added later have no OpenAI counterpart.
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_usage(usage: JsonObject) -> JsonObject:
    # inputTokens counts only the uncached input; OpenAI's prompt_tokens includes cached tokens, as totalTokens does.
    cache_read = int(usage.get("cacheReadInputTokens", 0))
    cache_write = int(usage.get("cacheWriteInputTokens", 0))
    prompt = int(usage.get("inputTokens", 0)) + cache_read + cache_write
    completion = int(usage.get("outputTokens", 0))
    cached = cache_read if "cacheReadInputTokens" in usage else None
    return res.usage(prompt, completion, usage.get("totalTokens"), cached_tokens=cached)


def converse_to_chat(response: JsonObject, *, model: str, completion_id: str, created: int) -> JsonObject:
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block["text"] for block in blocks if "text" in block)
    calls = [
        res.tool_call(use["toolUseId"], use["name"], json.dumps(use.get("input", {}), ensure_ascii=False))
        for use in (block["toolUse"] for block in blocks if "toolUse" in block)
    ]
    choice = res.choice(0, text, calls, finish_reason(response.get("stopReason")))
    usage = response.get("usage")
    return res.completion(
        completion_id=completion_id,
        created=created,
        model=model,
        choices=[choice],
        usage=chat_usage(usage) if isinstance(usage, dict) else None,
    )


class ConverseStreamTranslator:
    """Turns decoded ConverseStream events (`{"<eventType>": payload}`) into OpenAI chunks, one event at a time.

    Tool calls stream as OpenAI streams them: a chunk with id and name and empty arguments (from
    contentBlockStart), then argument fragments (from contentBlockDelta), keyed by the tool call's position.
    Exception events (`throttlingException`, ...) are the HTTP adapter's to raise; they yield no chunk here.
    """

    def __init__(self, model: str, completion_id: str, created: int, *, include_usage: bool = False) -> None:
        self._writer = ChunkWriter(completion_id, created, model)
        self._include_usage = include_usage
        self._started = False
        self._tool_positions: dict[int, int] = {}
        self._handlers: dict[str, Callable[[JsonObject], list[JsonObject]]] = {
            "messageStart": self._message_start,
            "contentBlockStart": self._block_start,
            "contentBlockDelta": self._block_delta,
            "messageStop": self._message_stop,
            "metadata": self._metadata,
        }

    def feed(self, event: JsonObject) -> list[JsonObject]:
        chunks: list[JsonObject] = []
        for event_type, payload in event.items():
            handler = self._handlers.get(event_type)
            if handler is not None and isinstance(payload, dict):
                chunks.extend(handler(payload))
        return chunks

    def _open(self) -> list[JsonObject]:
        if self._started:
            return []
        self._started = True
        return [self._writer.role()]

    def _message_start(self, payload: JsonObject) -> list[JsonObject]:
        return self._open()

    def _block_start(self, payload: JsonObject) -> list[JsonObject]:
        use = payload.get("start", {}).get("toolUse")
        if not isinstance(use, dict):
            return self._open()
        position = len(self._tool_positions)
        self._tool_positions[payload.get("contentBlockIndex", position)] = position
        return [*self._open(), self._writer.tool_call_start(position, use["toolUseId"], use["name"])]

    def _block_delta(self, payload: JsonObject) -> list[JsonObject]:
        delta = payload.get("delta", {})
        if delta.get("text"):
            return [*self._open(), self._writer.content(delta["text"])]
        position = self._tool_positions.get(payload.get("contentBlockIndex", -1))
        fragment = delta.get("toolUse", {}).get("input")
        if position is None or not fragment:
            return []
        return [self._writer.tool_call_arguments(position, fragment)]

    def _message_stop(self, payload: JsonObject) -> list[JsonObject]:
        return [*self._open(), self._writer.finish(finish_reason(payload.get("stopReason")))]

    def _metadata(self, payload: JsonObject) -> list[JsonObject]:
        usage = payload.get("usage")
        if not self._include_usage or not isinstance(usage, dict):
            return []
        return [self._writer.usage(chat_usage(usage))]
