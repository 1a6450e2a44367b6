"""Models: list, retrieve, delete (`/models`, `/models/{model}`), at the upstream a route names, or across the
workspace when none is named.

With a route (a virtual key, a config, or a provider with its key or a custom host) the upstream's own answer comes
back, each model marked with the provider (and virtual key) that served it. The openai SDK's `models.list()` sends
only Authorization, though, and a gateway should still answer "what can I use here?" honestly. So without a route,
Portico asks every active virtual key of the workspace whose provider can list models (OpenAI-compatible ones;
`?provider=` narrows them) and returns the union, one entry per virtual key and model, so the `virtual_key` to route
with is right there. Keys that could not be asked (Bedrock and Vertex have no model list through Portico) or did
not answer are named under `unavailable` with the reason, rather than silently missing. Retrieval without a route
looks the id up in that union. Deletion always needs a route: it is never guessed.
"""

from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from gateway.config_model import Target
from gateway.relay import DATA_SCOPE, RoutedInput, forward_json, routed_reader, shaped
from gateway.route import Route
from gateway.targets import resolve
from portico.context import CallContext
from portico.db.credentials import VirtualKey
from portico.errors import InvalidRequest, NotFound, PorticoError
from portico.registry import operation
from providers.adapters.base import Forward, Json
from providers.adapters.registry import adapter_for
from providers.catalogue import ProviderSpec, provider_spec

LISTING = "model_listing"
# Asking a workspace's virtual keys: this many upstreams at once, each given this long to answer.
FAN_OUT = 8
LIST_TIMEOUT_S = 10.0
SORT_KEYS = {"name": "id", "provider": "provider", "ai_service": "owned_by"}


class ModelsListInput(RoutedInput):
    ai_service: str | None = Field(None, description="Only models whose owner (`owned_by`) is this, e.g. 'openai'.")
    limit: int | None = Field(None, ge=1, le=10_000, description="At most this many models.")
    offset: int = Field(0, ge=0, description="Skip this many models first.")
    sort: Literal["name", "provider", "ai_service"] = "name"
    order: Literal["asc", "desc"] = "asc"


class ModelInput(RoutedInput):
    model: str = Field(min_length=1, description="A model id, e.g. 'gpt-4o-mini'.")

    @field_validator("model")
    @classmethod
    def _one_segment(cls, value: str) -> str:
        # "." and ".." would be resolved away in the upstream URL, turning /models/.. into another path.
        if value in (".", ".."):
            raise ValueError("a model id cannot be '.' or '..'")
        return value


class ModelOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""
    provider: str | None = Field(None, description="The provider that listed it.")
    virtual_key: str | None = Field(None, description="The virtual key to route with for this model.")


class Unavailable(BaseModel):
    virtual_key: str
    provider: str
    reason: str


class UpstreamModels(BaseModel):
    data: list[ModelOut]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
    total: int = Field(description="Models matching the filters, before limit and offset.")
    unavailable: list[Unavailable] = Field(
        default_factory=list, description="Without a route: virtual keys whose models could not be listed, and why."
    )


class DeletedModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "model"
    deleted: bool


def routed(route: Route) -> bool:
    """Whether the caller named an upstream; a bare `provider` only narrows the workspace's virtual keys."""
    return bool(route.virtual_key or route.config or route.provider_key or route.custom_host)


async def _ask_route(
    ctx: CallContext, args: RoutedInput, operation: str, request: Forward, capability: str
) -> tuple[Json, Json]:
    """The routed upstream's answer, and the marks naming who served it."""
    call = args.inference_call()
    observation = call.observation(operation)
    answer = await forward_json(ctx, call, observation, capability, lambda _: request)
    served = observation.target
    return answer, ({"provider": served.provider, "virtual_key": served.virtual_key} if served else {})


def _marked(model: ModelOut, marks: Json) -> ModelOut:
    return model.model_copy(update={k: v for k, v in marks.items() if v is not None})


async def _workspace_keys(ctx: CallContext, provider: str | None) -> list[tuple[str, str]]:
    wanted: ProviderSpec | None = None
    if provider:
        wanted = provider_spec(provider)
        if wanted is None:
            raise InvalidRequest(f"Unknown provider '{provider}'.", param="provider", code="unsupported_provider")
    query = (
        select(VirtualKey.slug, VirtualKey.provider)
        .where(VirtualKey.workspace_id == ctx.workspace_id, VirtualKey.status == "active")
        .order_by(VirtualKey.created_at)
    )
    async with ctx.services.sessions() as session:
        rows = (await session.execute(query)).all()
    return [(slug, name) for slug, name in rows if wanted is None or provider_spec(name) == wanted]


async def _key_models(
    ctx: CallContext, slug: str, provider: str, limiter: asyncio.Semaphore
) -> list[ModelOut] | Unavailable:
    spec = provider_spec(provider)
    if spec is None or LISTING not in adapter_for(spec).capabilities:
        return Unavailable(virtual_key=slug, provider=provider, reason=f"'{provider}' has no model list via Portico.")
    async with limiter:
        try:
            target = await resolve(ctx, Target(virtual_key=slug), {})
            async with asyncio.timeout(LIST_TIMEOUT_S):
                answer = await adapter_for(spec).forward(
                    ctx.services.upstream, target, Forward("GET", "/models"), LIST_TIMEOUT_S
                )
                listed = shaped(UpstreamModels, await answer.json(), provider)
        except TimeoutError:
            return Unavailable(virtual_key=slug, provider=provider, reason=f"No answer within {LIST_TIMEOUT_S:.0f} s.")
        except PorticoError as error:
            return Unavailable(virtual_key=slug, provider=provider, reason=error.message)
    return [_marked(model, {"provider": spec.name, "virtual_key": slug}) for model in listed.data]


async def _workspace_models(ctx: CallContext, provider: str | None) -> tuple[list[ModelOut], list[Unavailable]]:
    limiter = asyncio.Semaphore(FAN_OUT)
    keys = await _workspace_keys(ctx, provider)
    outcomes = await asyncio.gather(*(_key_models(ctx, slug, name, limiter) for slug, name in keys))
    models = [model for outcome in outcomes if isinstance(outcome, list) for model in outcome]
    return models, [outcome for outcome in outcomes if isinstance(outcome, Unavailable)]


def _page(models: list[ModelOut], args: ModelsListInput, unavailable: list[Unavailable]) -> ModelList:
    if args.ai_service:
        models = [model for model in models if model.owned_by == args.ai_service]
    key = SORT_KEYS[args.sort]
    models = sorted(models, key=lambda m: (str(getattr(m, key) or ""), m.id, m.virtual_key or ""))
    if args.order == "desc":
        models.reverse()
    end = args.offset + args.limit if args.limit is not None else None
    return ModelList(data=models[args.offset : end], total=len(models), unavailable=unavailable)


@operation(
    name="models_list",
    summary="List models: the routed upstream's, or with no route every OpenAI-compatible virtual key's (marked).",
    toolset="models",
    input_model=ModelsListInput,
    output_model=ModelList,
    scope=DATA_SCOPE,
    method="GET",
    path="/models",
    read_only=True,
    idempotent=True,
    rest_reader=routed_reader(ModelsListInput),
)
async def models_list(ctx: CallContext, args: ModelsListInput) -> ModelList:
    if not routed(args.route):
        models, unavailable = await _workspace_models(ctx, args.provider)
        return _page(models, args, unavailable)
    answer, marks = await _ask_route(ctx, args, "models_list", Forward("GET", "/models"), LISTING)
    listed = shaped(UpstreamModels, answer, marks.get("provider"))
    return _page([_marked(model, marks) for model in listed.data], args, [])


def _model_path(model: str) -> str:
    # Quoted whole: an id is one path segment (fine-tuned ids hold colons, some vendors' hold slashes).
    return "/models/" + quote(model, safe="")


@operation(
    name="models_retrieve",
    summary="Describe one model: at the routed upstream, or with no route at whichever virtual key lists it.",
    toolset="models",
    input_model=ModelInput,
    output_model=ModelOut,
    scope=DATA_SCOPE,
    method="GET",
    path="/models/{model}",
    read_only=True,
    idempotent=True,
    rest_reader=routed_reader(ModelInput),
)
async def models_retrieve(ctx: CallContext, args: ModelInput) -> ModelOut:
    if routed(args.route):
        answer, marks = await _ask_route(ctx, args, "models_retrieve", Forward("GET", _model_path(args.model)), LISTING)
        return _marked(shaped(ModelOut, answer, marks.get("provider")), marks)
    models, unavailable = await _workspace_models(ctx, args.provider)
    found = next((model for model in models if model.id == args.model), None)
    if found is None:
        unasked = f" (not asked: {', '.join(u.virtual_key for u in unavailable)})" if unavailable else ""
        raise NotFound(
            f"No virtual key of this workspace lists the model '{args.model}'{unasked}.",
            param="model",
            code="model_not_found",
        )
    return found


@operation(
    name="models_delete",
    summary="Delete a fine-tuned model at the upstream the route names (virtual_key or config is required).",
    toolset="models",
    input_model=ModelInput,
    output_model=DeletedModel,
    scope=DATA_SCOPE,
    method="DELETE",
    path="/models/{model}",
    destructive=True,
    rest_reader=routed_reader(ModelInput),
)
async def models_delete(ctx: CallContext, args: ModelInput) -> DeletedModel:
    if not routed(args.route):
        raise InvalidRequest(
            "Deleting a model needs to know where: send x-portkey-virtual-key or x-portkey-config "
            "(over MCP: virtual_key or config).",
            param="x-portkey-virtual-key",
            code="missing_provider",
        )
    request = Forward("DELETE", _model_path(args.model))
    answer, marks = await _ask_route(ctx, args, "models_delete", request, "model_deletion")
    return shaped(DeletedModel, answer, marks.get("provider"))
