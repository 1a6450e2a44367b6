"""What the request log records about one gateway call: its trace headers, which target served it, the outcome."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from gateway.pricing import cost
from gateway.targets import ResolvedTarget
from portico.context import CallContext
from portico.errors import InvalidRequest, PorticoError
from portico.ids import new_uuid, now

T = TypeVar("T")
METADATA_HEADER = "x-portkey-metadata"


class Trace(BaseModel):
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    span_name: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Trace:
        metadata = None
        if raw := headers.get(METADATA_HEADER):
            try:
                metadata = json.loads(raw)
            except json.JSONDecodeError:
                metadata = None
            if not isinstance(metadata, dict):
                raise InvalidRequest(f"{METADATA_HEADER} must be a JSON object.", param=METADATA_HEADER)
        return cls(
            trace_id=headers.get("x-portkey-trace-id"),
            span_id=headers.get("x-portkey-span-id"),
            parent_span_id=headers.get("x-portkey-parent-span-id"),
            span_name=headers.get("x-portkey-span-name"),
            metadata=metadata,
        )


@dataclass
class Observation:
    operation: str
    trace: Trace
    model: str | None
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    target: ResolvedTarget | None = None
    cache_status: str = "DISABLED"
    usage: dict[str, Any] = field(default_factory=dict)

    def served_by(self, target: ResolvedTarget) -> None:
        self.target = target

    def record(self, ctx: CallContext, status: int, error: PorticoError | None = None) -> None:
        prompt, completion = self.usage.get("prompt_tokens"), self.usage.get("completion_tokens")
        ctx.services.request_log.record(
            {
                "id": new_uuid(),
                "workspace_id": ctx.workspace_id,
                "api_key_id": ctx.principal.api_key_id,
                "operation": self.operation,
                "provider": self.target.provider if self.target else None,
                "virtual_key": self.target.virtual_key if self.target else None,
                "model": self.model,
                "status": status,
                "error_code": error.code if error else None,
                "error_message": error.message[:1000] if error else None,
                "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": self.usage.get("total_tokens"),
                "cost": cost(self.model, prompt, completion),
                "stream": self.stream,
                "cache_status": self.cache_status,
                "trace_id": self.trace.trace_id,
                "span_id": self.trace.span_id,
                "parent_span_id": self.trace.parent_span_id,
                "span_name": self.trace.span_name,
                "metadata": self.trace.metadata,
                "created_at": now(),
            }
        )


async def observed(ctx: CallContext, observation: Observation, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`, then record its outcome: usage from a JSON result, or the error it raised."""
    try:
        result = await call()
    except PorticoError as error:
        observation.record(ctx, error.status, error)
        raise
    if isinstance(result, dict) and isinstance(result.get("usage"), dict):
        observation.usage = result["usage"]
    if not observation.stream:
        observation.record(ctx, 200)
    return result


async def observed_stream(
    ctx: CallContext, observation: Observation, chunks: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """Pass a stream through, recording once it ends: usage from the last usage chunk, or the error that cut it."""
    try:
        async for chunk in chunks:
            if isinstance(chunk.get("usage"), dict):
                observation.usage = chunk["usage"]
            yield chunk
    except PorticoError as error:
        observation.record(ctx, error.status, error)
        raise
    observation.record(ctx, 200)
