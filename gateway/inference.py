"""The inference operations: chat completions (plain and streamed) and embeddings, routed per request.

Over REST the body is OpenAI's and the route comes from Portkey's headers; over MCP the same service runs with
the route as tool arguments (`gateway.tools`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from gateway.cache import CacheHeaders, lookup, policy_for, store
from gateway.config_model import Target
from gateway.executor import Attempt, execute
from gateway.observe import Observation, Trace, observed, observed_stream
from gateway.route import Route, plan_for
from gateway.targets import ResolvedTarget
from portico import json_codec
from portico.context import CallContext
from portico.dispatch import invalid_arguments
from portico.errors import PorticoError
from portico.json_body import json_object
from portico.registry import operation
from portico.request_headers import headers_of
from portico.streaming import StreamedContent
from providers.adapters.base import Json, ProviderAdapter, require
from providers.adapters.registry import adapter_for
from providers.http import UpstreamClient

DATA_SCOPE = "completions.write"


class InferenceCall(BaseModel):
    """An OpenAI request body, where to send it, and the trace it belongs to."""

    body: dict[str, Any]
    route: Route
    trace: Trace = Field(default_factory=Trace)
    cache: CacheHeaders = Field(default_factory=CacheHeaders)

    def observation(self, operation: str) -> Observation:
        model = self.body.get("model")
        return Observation(
            operation, self.trace, model if isinstance(model, str) else None, stream=bool(self.body.get("stream"))
        )


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[Any]


async def read_inference(request: Request, _: CallContext) -> InferenceCall:
    headers = headers_of(request)
    return InferenceCall(
        body=await json_object(request),
        route=Route.from_headers(headers),
        trace=Trace.from_headers(headers),
        cache=CacheHeaders.from_headers(headers),
    )


def checked(model: type[BaseModel], body: dict[str, Any]) -> None:
    try:
        model.model_validate(body)
    except ValidationError as error:
        raise invalid_arguments(error) from None


async def cached_execute(
    ctx: CallContext,
    call: InferenceCall,
    observation: Observation,
    operation: str,
    attempt: Attempt[Json],
    plan: Target | None = None,
) -> Json:
    """Route and run the request, answering from the cache when the config enables it and holds the answer. `plan`
    is `plan_for(ctx, call.route)` when the caller already has it (a managed batch works it out once per chunk)."""
    plan = plan or await plan_for(ctx, call.route)
    policy = policy_for(plan, ctx.services, ctx.workspace_id, operation, call.body, call.cache)
    if policy is None:
        return await execute(ctx, plan, attempt)
    hit = await lookup(ctx.services, policy)
    if hit is not None:
        observation.cache_status = "HIT"
        return hit
    result = await execute(ctx, plan, attempt)
    await store(ctx.services, policy, result)
    observation.cache_status = "REFRESH" if policy.force_refresh else "MISS"
    return result


def with_overrides(body: Json, target: ResolvedTarget) -> Json:
    merged = {**body, **target.override_params} if target.override_params else body
    if target.provider_access is not None:
        target.provider_access.check_model(merged.get("model"))
    return merged


# How one adapter call is made for a JSON operation: (adapter, http client, target, body, timeout) -> result.
AdapterCall = Callable[[ProviderAdapter, UpstreamClient, ResolvedTarget, Json, float | None], Awaitable[Json]]


async def routed_json(
    ctx: CallContext,
    call: InferenceCall,
    operation: str,
    capability: str,
    invoke: AdapterCall,
    plan: Target | None = None,
) -> Json:
    """Route a JSON request through the plan (and the cache), run it at the chosen target, and log the outcome."""
    observation = call.observation(operation)

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> Json:
        observation.served_by(target)
        adapter = adapter_for(target.spec)
        require(adapter, capability, target.provider)
        return await invoke(adapter, ctx.services.upstream, target, with_overrides(call.body, target), timeout_s)

    async def run() -> Json:
        return await cached_execute(ctx, call, observation, operation, attempt, plan)

    return await observed(ctx, observation, run)


async def _chat(
    adapter: ProviderAdapter, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
) -> Json:
    return await adapter.chat(http, target, body, timeout_s)


async def _embeddings(
    adapter: ProviderAdapter, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
) -> Json:
    return await adapter.embeddings(http, target, body, timeout_s)


async def complete_chat(ctx: CallContext, call: InferenceCall, plan: Target | None = None) -> Json:
    checked(ChatBody, call.body)
    return await routed_json(ctx, call, "chat_completions", "chat", _chat, plan)


async def stream_chat(ctx: CallContext, call: InferenceCall) -> AsyncIterator[Json]:
    checked(ChatBody, call.body)
    observation = call.observation("chat_completions")

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> AsyncIterator[Json]:
        observation.served_by(target)
        adapter = adapter_for(target.spec)
        require(adapter, "chat_stream", target.provider)
        body = with_overrides(call.body, target)
        return await adapter.open_chat_stream(ctx.services.upstream, target, body, timeout_s)

    async def run() -> AsyncIterator[Json]:
        return await execute(ctx, await plan_for(ctx, call.route), attempt)

    return observed_stream(ctx, observation, await observed(ctx, observation, run))


async def server_sent_events(chunks: AsyncIterator[Json]) -> AsyncIterator[bytes]:
    """OpenAI's SSE framing. An error after the response has started can only be reported in-band."""
    try:
        async for chunk in chunks:
            yield b"data: " + json_codec.dumps(chunk) + b"\n\n"
    except PorticoError as error:
        yield b"data: " + json_codec.dumps(error.to_body()) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"


@operation(
    name="chat_completions",
    summary="Create a chat completion (OpenAI format) at the provider chosen by virtual key, config or headers.",
    toolset="inference",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/chat/completions",
    mcp=False,
    rest_reader=read_inference,
    mcp_alternatives=("chat",),
)
async def chat_completions(ctx: CallContext, call: InferenceCall) -> Json | StreamedContent:
    if call.body.get("stream"):
        return StreamedContent(server_sent_events(await stream_chat(ctx, call)), media_type="text/event-stream")
    return await complete_chat(ctx, call)


@operation(
    name="embeddings_create",
    summary="Create embeddings (OpenAI format) at the provider chosen by virtual key, config or headers.",
    toolset="inference",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path="/embeddings",
    mcp=False,
    rest_reader=read_inference,
    mcp_alternatives=("embeddings",),
)
async def embeddings(ctx: CallContext, call: InferenceCall) -> Json:
    return await embed(ctx, call)


async def embed(ctx: CallContext, call: InferenceCall, plan: Target | None = None) -> Json:
    checked(EmbeddingsBody, call.body)
    return await routed_json(ctx, call, "embeddings", "embeddings", _embeddings, plan)
