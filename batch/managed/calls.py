"""One batch line through the gateway, as any data-plane call: routed, retried by the route's own config, and
request-logged (trace id = the batch id, metadata naming the batch and the custom_id).

The route is pinned once per chunk (`pinned`): a config named by slug is read once and its tree carried inline, so
lines cost no database lookup for it and a chunk never mixes two versions of a config; and the routing plan worked
out from it is reused by every line of the chunk (it depends on the route alone).

Each upstream request carries `X-Client-Request-Id: <batch_id>:<custom_id>`, set through the upstream client's
context variable; the simulators count it, which is how tests measure re-sent lines.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.completions import completions
from gateway.config_model import Target
from gateway.inference import InferenceCall, complete_chat, embed
from gateway.observe import Trace
from gateway.route import Route, plan_for
from portico.context import CallContext
from portico.errors import PorticoError, UpstreamError
from providers.adapters.base import Json
from providers.http import CLIENT_REQUEST_ID

log = logging.getLogger(__name__)

LineCall = Callable[[CallContext, InferenceCall, Target], Awaitable[Json]]
# Batch output is one whole response per line, so a streaming request is run plain.
STREAM_FIELDS = ("stream", "stream_options")
MAX_HEADER_ID = 256
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 60.0


async def _legacy_completion(ctx: CallContext, call: InferenceCall, _: Target) -> Json:
    answer = await completions(ctx, call)
    if not isinstance(answer, dict):
        raise PorticoError("A legacy completion answered with a stream although none was asked for.")
    return answer


ENDPOINTS: dict[str, LineCall] = {
    "/v1/chat/completions": complete_chat,
    "/v1/embeddings": embed,
    "/v1/completions": _legacy_completion,
}


@dataclass(frozen=True)
class Answer:
    body: Json | None = None
    error: PorticoError | None = None

    @property
    def retryable(self) -> bool:
        return self.error is not None and (self.error.status == 429 or self.error.status >= 500)

    @property
    def retry_after(self) -> float | None:
        return self.error.retry_after if isinstance(self.error, UpstreamError) else None


@dataclass(frozen=True)
class Pinned:
    """A chunk's route, its config (if any) inline, and the routing plan every line of the chunk runs through."""

    route: Route
    plan: Target


async def pinned(ctx: CallContext, route: Route) -> Pinned:
    if route.config:
        plan = await plan_for(ctx, route)
        route = Route(config=plan.model_dump_json(exclude_none=True))
    return Pinned(route, await plan_for(ctx, route))


def client_request_id(batch_id: str, custom_id: str | None) -> str:
    """`<batch_id>:<custom_id>`, or a digest of the custom_id where it could not travel as a header value."""
    text = custom_id or ""
    if 0 < len(text) <= MAX_HEADER_ID and text.isascii() and text.isprintable():
        return f"{batch_id}:{text}"
    return f"{batch_id}:sha256-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


async def call_line(
    ctx: CallContext, batch_id: str, endpoint: str, route: Pinned, custom_id: str | None, body: Json
) -> Answer:
    sent = {name: value for name, value in body.items() if name not in STREAM_FIELDS}
    trace = Trace(trace_id=batch_id, metadata={"batch_id": batch_id, "custom_id": custom_id})
    token = CLIENT_REQUEST_ID.set(client_request_id(batch_id, custom_id))
    try:
        call = InferenceCall(body=sent, route=route.route, trace=trace)
        return Answer(body=await ENDPOINTS[endpoint](ctx, call, route.plan))
    except PorticoError as error:
        return Answer(error=error)
    except Exception as error:
        # A batch line is an edge, like an HTTP request: whatever went wrong, it fails alone (and is retried).
        log.exception("batch %s line %s failed unexpectedly", batch_id, custom_id)
        return Answer(error=PorticoError(f"Portico failed while running this line: {type(error).__name__}."))
    finally:
        CLIENT_REQUEST_ID.reset(token)


def backoff(attempt: int, retry_after: float | None) -> float:
    """The provider's Retry-After when it sent one, else exponential backoff with jitter."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_CAP)
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)
