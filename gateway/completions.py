"""Legacy text completions (`POST /completions`), plain and streamed, at any OpenAI-compatible upstream.

Routed like chat, and streamed the same way: the upstream's events are re-framed by `server_sent_events`, so an
upstream failure mid-stream is reported in-band and the request log gets the usage chunk. Over MCP, `chat` serves
the same purpose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel, ConfigDict, Field

from gateway.executor import execute
from gateway.inference import InferenceCall, checked, read_inference, server_sent_events
from gateway.observe import observed, observed_stream
from gateway.relay import DATA_SCOPE, forward_json, opening, posting
from gateway.route import plan_for
from gateway.targets import ResolvedTarget
from portico.context import CallContext
from portico.registry import operation
from portico.streaming import StreamedContent
from providers.adapters.base import Json

PATH = "/completions"


class CompletionBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    # A string, strings, or token arrays: the upstream judges the finer shape.
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool = False


async def stream_completion(ctx: CallContext, call: InferenceCall) -> AsyncIterator[Json]:
    observation = call.observation("completions")
    open_answer = opening(ctx, observation, "completions_stream", posting(PATH, call))

    async def attempt(target: ResolvedTarget, timeout_s: float | None) -> AsyncIterator[Json]:
        return (await open_answer(target, timeout_s)).sse_json()

    async def run() -> AsyncIterator[Json]:
        return await execute(ctx, await plan_for(ctx, call.route), attempt)

    return observed_stream(ctx, observation, await observed(ctx, observation, run))


@operation(
    name="completions_create",
    summary="Create a legacy text completion (OpenAI format) at the provider chosen by virtual key or config.",
    toolset="inference",
    input_model=InferenceCall,
    output_model=None,
    scope=DATA_SCOPE,
    method="POST",
    path=PATH,
    mcp=False,
    rest_reader=read_inference,
    mcp_alternatives=("chat",),
)
async def completions(ctx: CallContext, call: InferenceCall) -> Json | StreamedContent:
    checked(CompletionBody, call.body)
    if call.body.get("stream"):
        return StreamedContent(server_sent_events(await stream_completion(ctx, call)), media_type="text/event-stream")
    observation = call.observation("completions")
    return await forward_json(ctx, call, observation, "completions", posting(PATH, call), cached=True)
