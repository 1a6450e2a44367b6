"""The models an integration allows (`/integrations/{slug}/models`): per-model switches and custom models, with
optional pricing. A model without a switch follows the integration's `allow_all_models`. Requests through a
provider (`@slug`) for a model the integration does not allow are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from control_plane.integration_access import load_integration
from control_plane.provider_access import forget_providers
from control_plane.workspaces import iso
from portico.context import CallContext
from portico.db.integrations import Integration, IntegrationModel
from portico.errors import InvalidRequest, NotFound
from portico.ids import now
from portico.registry import operation
from portico.wire import OmitNoneModel

TOOLSET = "gateway-admin"


class TokenPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: float = Field(ge=0, description="Price per token.")


class PayAsYouGo(BaseModel):
    # Extra keys are kept: pricing grows fields (cache reads, audio tokens) faster than the spec lists them.
    model_config = ConfigDict(extra="allow")

    request_token: TokenPrice | None = None
    response_token: TokenPrice | None = None


class PricingConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["static"] = "static"
    pay_as_you_go: PayAsYouGo | None = None


class ModelAccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(min_length=1, max_length=255, description="The model as requests name it, e.g. 'gpt-4o'.")
    enabled: bool
    is_custom: bool | None = Field(None, description="A model the provider's catalogue does not list (own deployment).")
    is_finetune: bool | None = None
    base_model_slug: str | None = Field(None, max_length=255, description="For fine-tunes: the model tuned.")
    pricing_config: PricingConfig | None = None


class UpdateModelsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(description="The integration's slug.")
    models: list[ModelAccessIn]
    allow_all_models: bool | None = Field(None, description="Whether models without a switch are allowed.")


class IntegrationSlugInput(BaseModel):
    slug: str = Field(description="The integration's slug.")


class DeleteModelsInput(BaseModel):
    slug: str = Field(description="The integration's slug.")
    slugs: str = Field(min_length=1, description="Comma-separated model slugs, e.g. 'gpt-4o,my-finetune'.")


class ModelOut(OmitNoneModel):
    slug: str
    name: str
    enabled: bool
    is_custom: bool | None
    is_finetune: bool | None
    base_model_slug: str | None
    pricing_config: dict[str, Any] | None
    created_at: str
    last_updated_at: str


class IntegrationModelsOut(BaseModel):
    total: int
    models: list[ModelOut]
    allow_all_models: bool


class DeletedModels(BaseModel):
    success: bool = True
    slugs: list[str]
    deleted: bool = True


def to_wire(row: IntegrationModel) -> ModelOut:
    return ModelOut(
        slug=row.slug,
        name=row.slug,
        enabled=row.enabled,
        is_custom=row.is_custom,
        is_finetune=row.is_finetune,
        base_model_slug=row.base_model_slug,
        pricing_config=row.pricing_config,
        created_at=iso(row.created_at),
        last_updated_at=iso(row.last_updated_at),
    )


async def models_of(ctx: CallContext, row: Integration) -> IntegrationModelsOut:
    query = select(IntegrationModel).where(IntegrationModel.integration_id == row.id).order_by(IntegrationModel.slug)
    async with ctx.services.sessions() as session:
        models = [to_wire(m) for m in (await session.execute(query)).scalars()]
    return IntegrationModelsOut(total=len(models), models=models, allow_all_models=row.allow_all_models)


def refuse_repeats(models: list[ModelAccessIn]) -> None:
    seen: set[str] = set()
    for index, model in enumerate(models):
        if model.slug in seen:
            raise InvalidRequest(f"Model '{model.slug}' is listed twice.", param=f"models.{index}.slug")
        seen.add(model.slug)


def apply(row: IntegrationModel, change: ModelAccessIn, stamp: int) -> None:
    row.enabled = change.enabled
    for name in ("is_custom", "is_finetune", "base_model_slug"):
        if name in change.model_fields_set:
            setattr(row, name, getattr(change, name))
    if "pricing_config" in change.model_fields_set:
        pricing = change.pricing_config
        row.pricing_config = pricing.model_dump(exclude_none=True) if pricing is not None else None
    row.last_updated_at = stamp


@operation(
    name="integrations_models_list",
    summary="List an integration's model switches and custom models, and whether unlisted models are allowed.",
    toolset=TOOLSET,
    plane="control",
    input_model=IntegrationSlugInput,
    output_model=IntegrationModelsOut,
    scope="integrations.read",
    method="GET",
    path="/integrations/{slug}/models",
    read_only=True,
    idempotent=True,
)
async def list_models(ctx: CallContext, args: IntegrationSlugInput) -> IntegrationModelsOut:
    return await models_of(ctx, await load_integration(ctx, args.slug))


@operation(
    name="integrations_models_update",
    summary="Enable or disable models on an integration, add custom or fine-tuned ones with pricing, and set "
    "whether unlisted models are allowed (allow_all_models).",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateModelsInput,
    output_model=IntegrationModelsOut,
    scope="integrations.update",
    method="PUT",
    path="/integrations/{slug}/models",
    idempotent=True,
)
async def update_models(ctx: CallContext, args: UpdateModelsInput) -> IntegrationModelsOut:
    row = await load_integration(ctx, args.slug, admin_action="changing an integration's models")
    refuse_repeats(args.models)
    stamp = now()
    async with ctx.services.sessions() as session, session.begin():
        query = select(IntegrationModel).where(IntegrationModel.integration_id == row.id)
        existing = {m.slug: m for m in (await session.execute(query)).scalars()}
        for change in args.models:
            model = existing.get(change.slug)
            if model is None:
                model = IntegrationModel(integration_id=row.id, slug=change.slug, created_at=stamp)
                session.add(model)
            apply(model, change, stamp)
        if args.allow_all_models is not None:
            row.allow_all_models = args.allow_all_models
        row.last_updated_at = stamp
        await session.merge(row)
    forget_providers(ctx.services)
    return await models_of(ctx, row)


@operation(
    name="integrations_models_delete",
    summary="Remove models (custom ones, or switches) from an integration by slug; removed switches fall back to "
    "allow_all_models.",
    toolset=TOOLSET,
    plane="control",
    input_model=DeleteModelsInput,
    output_model=DeletedModels,
    scope="integrations.update",
    method="DELETE",
    path="/integrations/{slug}/models",
    destructive=True,
)
async def delete_models(ctx: CallContext, args: DeleteModelsInput) -> DeletedModels:
    row = await load_integration(ctx, args.slug, admin_action="changing an integration's models")
    slugs = list(dict.fromkeys(s.strip() for s in args.slugs.split(",") if s.strip()))
    if not slugs:
        raise InvalidRequest("slugs names no model.", param="slugs")
    async with ctx.services.sessions() as session, session.begin():
        query = select(IntegrationModel.slug).where(
            IntegrationModel.integration_id == row.id, IntegrationModel.slug.in_(slugs)
        )
        present = set((await session.execute(query)).scalars())
        missing = [s for s in slugs if s not in present]
        if missing:
            # Nothing is deleted when any slug is wrong: a typo must not leave half the request applied.
            raise NotFound(f"Integration '{row.slug}' has no models {missing}.", param="slugs", code="not_found")
        await session.execute(
            delete(IntegrationModel).where(IntegrationModel.integration_id == row.id, IntegrationModel.slug.in_(slugs))
        )
    forget_providers(ctx.services)
    return DeletedModels(slugs=slugs)
