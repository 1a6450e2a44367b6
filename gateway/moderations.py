"""Moderations (`POST /moderations`): whether texts (or images) break a content policy, judged by the upstream.

Only OpenAI-compatible upstreams offer it (neither Bedrock nor Vertex has a moderation endpoint); others answer
400 naming the capability and the provider. One declaration serves REST and MCP: over MCP the route is arguments.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.relay import DATA_SCOPE, RoutedInput, forward_json, posting, routed_reader, shaped
from portico.context import CallContext
from portico.registry import operation


class ModerationInput(RoutedInput):
    # Fields OpenAI adds later pass through over REST.
    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[dict[str, Any]] = Field(
        description="A text, a list of texts, or multimodal parts ([{'type': 'text', 'text': ...}, "
        "{'type': 'image_url', 'image_url': {'url': ...}}])."
    )
    model: str | None = Field(None, description="e.g. 'omni-moderation-latest'; the upstream's default if omitted.")


class ModerationResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    model: str
    results: list[dict[str, Any]] = Field(description="Per input: flagged, categories, category_scores.")


@operation(
    name="moderations_create",
    summary="Check texts for policy violations (flagged, per-category scores); pass virtual_key or config to route.",
    toolset="inference",
    input_model=ModerationInput,
    output_model=ModerationResult,
    scope=DATA_SCOPE,
    method="POST",
    path="/moderations",
    read_only=True,
    idempotent=True,
    rest_reader=routed_reader(ModerationInput),
)
async def moderations(ctx: CallContext, args: ModerationInput) -> ModerationResult:
    call = args.inference_call()
    observation = call.observation("moderations")
    answer = await forward_json(ctx, call, observation, "moderations", posting("/moderations", call), cached=True)
    return shaped(ModerationResult, answer, observation.target.provider if observation.target else None)
