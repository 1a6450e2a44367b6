"""Providers (`/providers*`): a workspace's handle on an integration, which requests select with
`x-portkey-provider: @<slug>` (Portkey's "@provider" convention; see `control_plane.provider_access`).

A provider holds no credentials of its own: it names an integration the workspace may use (scoped to it, granted to
it, or open to all), and requests through it are served with that integration's sealed credentials, limited to the
models the integration allows. Revoking the workspace's access makes its providers unusable without deleting them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.integration_access import SLUG_PATTERN, named_workspace, usable_by, writing
from control_plane.limits import RateLimit, UsageLimits, stored, stored_list
from control_plane.provider_access import PREFIX, forget_providers
from control_plane.virtual_keys import new_slug
from control_plane.workspaces import iso
from portico.context import CallContext
from portico.db.integrations import Integration, Provider
from portico.errors import Conflict, InvalidRequest, NotFound
from portico.ids import new_uuid, now
from portico.pagination import PageParams, PortkeyPage, page_rows
from portico.registry import operation
from portico.wire import OmitNoneModel

TOOLSET = "gateway-admin"
# The spec's samples spell some fields in camelCase (`integrationId`, `workspaceId`); both spellings are read.
WORKSPACE_ID = Field(
    None,
    description="Organisation keys: the workspace (id or slug) to act in. Workspace keys act in their own.",
    validation_alias=AliasChoices("workspace_id", "workspaceId"),
)


class CreateProviderInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    integration_id: str = Field(
        description="Slug of the integration whose credentials the provider uses; the workspace must have access.",
        validation_alias=AliasChoices("integration_id", "integrationId"),
    )
    workspace_id: str | None = WORKSPACE_ID
    slug: str | None = Field(
        None, max_length=255, pattern=SLUG_PATTERN, description="Requests use it as '@<slug>'; made from the name."
    )
    note: str | None = Field(None, max_length=2000)
    usage_limits: UsageLimits | None = None
    rate_limits: RateLimit | list[RateLimit] | None = None
    expires_at: datetime | None = Field(None, description="ISO 8601; the provider stops working then.")


class UpdateProviderInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(description="The provider's slug.")
    workspace_id: str | None = WORKSPACE_ID
    name: str | None = Field(None, min_length=1, max_length=255)
    note: str | None = Field(None, max_length=2000)
    usage_limits: UsageLimits | None = None
    rate_limits: RateLimit | list[RateLimit] | None = None
    expires_at: datetime | None = Field(None, description="ISO 8601, or null for no expiry.")
    reset_usage: bool | None = Field(None, description="Reset consumed usage (Portico does not meter usage yet).")


class ProviderSlugInput(BaseModel):
    slug: str = Field(description="The provider's slug (without the '@').")
    workspace_id: str | None = WORKSPACE_ID


class ListProvidersInput(PageParams):
    workspace_id: str | None = WORKSPACE_ID


class ProviderRef(BaseModel):
    id: str
    slug: str


class ProviderOut(OmitNoneModel):
    id: str
    slug: str
    name: str
    integration_id: str = Field(description="The integration's slug.")
    ai_provider_id: str
    workspace_id: str
    note: str | None
    status: Literal["active", "expired"]
    usage_limits: dict[str, Any] | None
    rate_limits: list[dict[str, Any]] | None
    expires_at: str | None
    created_at: str
    last_updated_at: str
    object: Literal["provider"] = "provider"


class ProviderList(PortkeyPage[ProviderOut]):
    pass


class DeletedProvider(BaseModel):
    success: bool = True
    slug: str
    object: Literal["provider"] = "provider"
    deleted: bool = True


def epoch(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def to_wire(row: Provider, integration: Integration) -> ProviderOut:
    expired = row.expires_at is not None and row.expires_at <= now()
    return ProviderOut(
        id=row.id,
        slug=row.slug,
        name=row.name,
        integration_id=integration.slug,
        ai_provider_id=integration.ai_provider_id,
        workspace_id=row.workspace_id,
        note=row.note,
        status="expired" if expired else "active",
        usage_limits=row.usage_limits,
        rate_limits=row.rate_limits,
        expires_at=iso(row.expires_at) if row.expires_at is not None else None,
        created_at=iso(row.created_at),
        last_updated_at=iso(row.last_updated_at),
    )


async def load(ctx: CallContext, slug: str, workspace_id: str | None) -> tuple[Provider, Integration]:
    workspace = await named_workspace(ctx, workspace_id)
    query = (
        select(Provider, Integration)
        .join(Integration, Integration.id == Provider.integration_id)
        .where(Provider.workspace_id == workspace, Provider.slug == slug)
    )
    async with ctx.services.sessions() as session:
        found = (await session.execute(query)).one_or_none()
    if found is None:
        raise NotFound(f"No provider '{slug}' in this workspace.", param="slug", code="not_found")
    provider, integration = found
    return provider, integration


async def slug_holder(session: AsyncSession, workspace_id: str, slug: str) -> Provider | None:
    query = select(Provider).where(Provider.workspace_id == workspace_id, Provider.slug == slug)
    return (await session.execute(query)).scalar_one_or_none()


def new_provider(workspace_id: str, integration: Integration, slug: str, name: str) -> Provider:
    stamp = now()
    return Provider(
        id=new_uuid(),
        workspace_id=workspace_id,
        integration_id=integration.id,
        slug=slug,
        name=name,
        created_at=stamp,
        last_updated_at=stamp,
    )


async def default_provider(
    session: AsyncSession, integration: Integration, workspace_id: str, asked: str | None, param: str
) -> Provider | None:
    """The provider to create when a workspace gains access to an integration, or None when it needs none: it
    already has one for this integration, or no slug was asked for and the integration's own slug is taken there.
    A slug asked for that is taken is refused, naming `param`, as the spec says."""
    has_one = select(Provider.id).where(
        Provider.workspace_id == workspace_id, Provider.integration_id == integration.id
    )
    if (await session.execute(has_one.limit(1))).first() is not None:
        return None
    slug = asked or integration.slug
    if await slug_holder(session, workspace_id, slug) is not None:
        if asked is None:
            return None
        raise InvalidRequest(
            f"Workspace '{workspace_id}' already has a provider '{slug}'.", param=param, code="slug_taken"
        )
    return new_provider(workspace_id, integration, slug, integration.name)


async def usable_integration(session: AsyncSession, ctx: CallContext, ref: str, workspace_id: str) -> Integration:
    query = select(Integration).where(
        Integration.organisation_id == ctx.principal.organisation_id,
        or_(Integration.slug == ref, Integration.id == ref),
        usable_by(workspace_id),
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound(
            f"No integration '{ref}' is available to workspace '{workspace_id}'; an organisation admin grants access "
            f"with PUT /integrations/{ref}/workspaces.",
            param="integration_id",
            code="not_found",
        )
    return found


@operation(
    name="providers_create",
    summary="Add a provider to a workspace from an integration it may use; requests then route with "
    "x-portkey-provider: @<slug> on the integration's credentials.",
    toolset=TOOLSET,
    plane="control",
    input_model=CreateProviderInput,
    output_model=ProviderRef,
    scope="providers.create",
    method="POST",
    path="/providers",
)
async def create(ctx: CallContext, args: CreateProviderInput) -> ProviderRef:
    workspace = await named_workspace(ctx, args.workspace_id)
    slug = args.slug or new_slug(args.name)
    taken = f"This workspace already has a provider '{slug}'."
    async with writing(ctx, taken, "slug") as session:
        integration = await usable_integration(session, ctx, args.integration_id, workspace)
        if await slug_holder(session, workspace, slug) is not None:
            raise Conflict(taken, param="slug", code="slug_taken")
        row = new_provider(workspace, integration, slug, args.name)
        row.note = args.note
        row.usage_limits = stored(args.usage_limits)
        row.rate_limits = stored_list(args.rate_limits)
        row.expires_at = epoch(args.expires_at)
        session.add(row)
    forget_providers(ctx.services)
    return ProviderRef(id=row.id, slug=row.slug)


@operation(
    name="providers_list",
    summary="List the workspace's providers: the '@slug' names requests can route to, and their integrations.",
    toolset=TOOLSET,
    plane="control",
    input_model=ListProvidersInput,
    output_model=ProviderList,
    scope="providers.list",
    method="GET",
    path="/providers",
    read_only=True,
    idempotent=True,
)
async def list_providers(ctx: CallContext, args: ListProvidersInput) -> ProviderList:
    workspace = await named_workspace(ctx, args.workspace_id)
    query = select(Provider).where(Provider.workspace_id == workspace)
    async with ctx.services.sessions() as session:
        rows, total = await page_rows(session, query, args, Provider.created_at.desc(), Provider.id.desc())
        ids = {row.integration_id for row in rows}
        integrations = {
            i.id: i for i in (await session.execute(select(Integration).where(Integration.id.in_(ids)))).scalars()
        }
    return ProviderList(total=total, data=[to_wire(row, integrations[row.integration_id]) for row in rows])


@operation(
    name="providers_retrieve",
    summary="Get one provider of the workspace by slug: its integration, limits, expiry and status.",
    toolset=TOOLSET,
    plane="control",
    input_model=ProviderSlugInput,
    output_model=ProviderOut,
    scope="providers.read",
    method="GET",
    path="/providers/{slug}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://providers/{slug}",
)
async def retrieve(ctx: CallContext, args: ProviderSlugInput) -> ProviderOut:
    return to_wire(*await load(ctx, args.slug, args.workspace_id))


@operation(
    name="providers_update",
    summary="Rename a provider or change its note, usage/rate limits or expiry (its integration cannot change).",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateProviderInput,
    output_model=ProviderOut,
    scope="providers.update",
    method="PUT",
    path="/providers/{slug}",
    idempotent=True,
)
async def update(ctx: CallContext, args: UpdateProviderInput) -> ProviderOut:
    row, integration = await load(ctx, args.slug, args.workspace_id)
    given = args.model_fields_set
    if args.name is not None:
        row.name = args.name
    if "note" in given:
        row.note = args.note
    if "usage_limits" in given:
        row.usage_limits = stored(args.usage_limits)
    if "rate_limits" in given:
        row.rate_limits = stored_list(args.rate_limits)
    if "expires_at" in given:
        row.expires_at = epoch(args.expires_at)
    row.last_updated_at = now()
    async with ctx.services.sessions() as session, session.begin():
        await session.merge(row)
    forget_providers(ctx.services)
    return to_wire(row, integration)


@operation(
    name="providers_delete",
    summary=f"Delete a provider from the workspace; requests naming {PREFIX}<slug> fail from then on. The "
    "integration is untouched.",
    toolset=TOOLSET,
    plane="control",
    input_model=ProviderSlugInput,
    output_model=DeletedProvider,
    scope="providers.delete",
    method="DELETE",
    path="/providers/{slug}",
    destructive=True,
)
async def delete_provider(ctx: CallContext, args: ProviderSlugInput) -> DeletedProvider:
    row, _ = await load(ctx, args.slug, args.workspace_id)
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(Provider).where(Provider.id == row.id))
    forget_providers(ctx.services)
    return DeletedProvider(slug=row.slug)
