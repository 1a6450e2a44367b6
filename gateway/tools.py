"""The `inference` toolset for MCP: chat and embeddings with the route as arguments (MCP has no per-call headers).

The same services as `POST /v1/chat/completions` and `/v1/embeddings` run underneath.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.inference import DATA_SCOPE, InferenceCall, complete_chat, embed
from gateway.route import Route
from portico.context import CallContext
from portico.registry import operation


class ChatToolInput(Route):
    model: str = Field(min_length=1, description="The model, e.g. 'gpt-4o-mini' or a Bedrock/Vertex model id.")
    messages: list[dict[str, Any]] = Field(
        min_length=1, description="OpenAI chat messages: [{'role': 'user', 'content': '...'}]."
    )
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = Field(None, description="OpenAI function tools the model may call.")
    response_format: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class EmbeddingsToolInput(Route):
    model: str = Field(min_length=1)
    input: str | list[str] = Field(description="A text or a list of texts.")
    dimensions: int | None = Field(None, ge=1)


class EmbeddingList(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: str
    data: list[dict[str, Any]]
    model: str
    usage: dict[str, Any] | None = None


def _split(args: Route, route_fields: type[Route] = Route) -> InferenceCall:
    values = args.model_dump(exclude_none=True)
    route = Route(**{k: values.pop(k) for k in list(values) if k in route_fields.model_fields})
    return InferenceCall(body=values, route=route)


@operation(
    name="chat",
    summary="Chat with a model through Portico: pass virtual_key (or config) to choose the provider.",
    toolset="inference",
    input_model=ChatToolInput,
    output_model=ChatCompletion,
    scope=DATA_SCOPE,
)
async def chat(ctx: CallContext, args: ChatToolInput) -> ChatCompletion:
    return ChatCompletion.model_validate(await complete_chat(ctx, _split(args)))


@operation(
    name="embeddings",
    summary="Embed texts through Portico: pass virtual_key (or config) to choose the provider.",
    toolset="inference",
    input_model=EmbeddingsToolInput,
    output_model=EmbeddingList,
    scope=DATA_SCOPE,
    read_only=True,
    idempotent=True,
)
async def embeddings(ctx: CallContext, args: EmbeddingsToolInput) -> EmbeddingList:
    return EmbeddingList.model_validate(await embed(ctx, _split(args)))
