"""Which workspaces may use an organisation-level integration (`/integrations/{slug}/workspaces`), with limits.

A workspace's own grant (enabled or refused) wins; a workspace without one follows global access, which also
covers workspaces created later. Granting access creates a default provider in the workspace unless told not to
(its slug: the workspace's `default_provider_slug`, else the request's, else the integration's slug), so
`@<integration-slug>` works there at once. Refusing access makes the workspace's providers unusable without deleting
them; granting it again restores them.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.integration_access import SLUG_PATTERN, load_integration, not_workspace_scoped
from control_plane.limits import RateLimit, UsageLimits, stored_list
from control_plane.provider_access import forget_providers
from control_plane.providers import default_provider
from control_plane.workspaces import iso
from portico.context import CallContext
from portico.db.integrations import Integration, IntegrationWorkspace
from portico.db.models import Workspace
from portico.errors import InvalidRequest, NotFound
from portico.ids import now
from portico.registry import operation

TOOLSET = "gateway-admin"
ONE_LIMIT = "At most one entry, as the spec allows."


class WorkspaceAccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The workspace's id or slug.")
    enabled: bool
    usage_limits: list[UsageLimits] | None = Field(None, max_length=1, description=ONE_LIMIT)
    rate_limits: list[RateLimit] | None = Field(None, max_length=1, description=ONE_LIMIT)
    reset_usage: bool | None = Field(None, description="Reset consumed usage (Portico does not meter usage yet).")
    create_default_provider: bool | None = Field(None, description="Overrides the request-wide setting.")
    default_provider_slug: str | None = Field(None, max_length=255, pattern=SLUG_PATTERN)


class GlobalAccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="Open the integration to every workspace without a grant, future ones too.")
    usage_limits: list[UsageLimits] | None = Field(None, max_length=1, description=ONE_LIMIT)
    rate_limits: list[RateLimit] | None = Field(None, max_length=1, description=ONE_LIMIT)


class UpdateWorkspacesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(description="The integration's slug.")
    workspaces: list[WorkspaceAccessIn] = Field(default_factory=list)
    global_workspace_access: GlobalAccessIn | None = None
    # The spec says `override_existing_workspace_access`; the portkey-ai SDK sends `..._workspaces_access`.
    override_existing_workspace_access: bool = Field(
        False,
        description="Remove the grants of workspaces not listed here.",
        validation_alias=AliasChoices("override_existing_workspace_access", "override_existing_workspaces_access"),
    )
    create_default_provider: bool = True
    default_provider_slug: str | None = Field(None, max_length=255, pattern=SLUG_PATTERN)


class IntegrationSlugInput(BaseModel):
    slug: str = Field(description="The integration's slug.")


class GlobalAccessOut(BaseModel):
    enabled: bool
    usage_limits: list[dict[str, Any]] | None
    rate_limits: list[dict[str, Any]] | None


class WorkspaceAccessOut(BaseModel):
    id: str
    enabled: bool
    usage_limits: list[dict[str, Any]] | None
    rate_limits: list[dict[str, Any]] | None
    created_at: str
    last_updated_at: str


class IntegrationWorkspacesOut(BaseModel):
    total: int
    workspaces: list[WorkspaceAccessOut]
    global_workspace_access: GlobalAccessOut


def global_access_of(row: Integration) -> GlobalAccessOut:
    return GlobalAccessOut(
        enabled=row.global_access, usage_limits=row.global_usage_limits, rate_limits=row.global_rate_limits
    )


async def workspace_count(session: AsyncSession, row: Integration) -> int:
    """How many of the organisation's workspaces may use the integration now."""
    if row.workspace_id is not None:
        return 1
    grants = select(IntegrationWorkspace.enabled).where(IntegrationWorkspace.integration_id == row.id)
    decided = list((await session.execute(grants)).scalars())
    enabled = sum(decided)
    if not row.global_access:
        return enabled
    everyone = select(func.count()).where(Workspace.organisation_id == row.organisation_id)
    return int((await session.execute(everyone)).scalar_one()) - len(decided) + enabled


async def access_of(ctx: CallContext, row: Integration) -> IntegrationWorkspacesOut:
    if row.workspace_id is not None:
        stamp = iso(row.created_at)
        scoped = WorkspaceAccessOut(
            id=row.workspace_id,
            enabled=True,
            usage_limits=None,
            rate_limits=None,
            created_at=stamp,
            last_updated_at=stamp,
        )
        return IntegrationWorkspacesOut(total=1, workspaces=[scoped], global_workspace_access=global_access_of(row))
    query = (
        select(IntegrationWorkspace)
        .where(IntegrationWorkspace.integration_id == row.id)
        .order_by(IntegrationWorkspace.created_at, IntegrationWorkspace.workspace_id)
    )
    async with ctx.services.sessions() as session:
        grants = list((await session.execute(query)).scalars())
    listed = [
        WorkspaceAccessOut(
            id=g.workspace_id,
            enabled=g.enabled,
            usage_limits=g.usage_limits,
            rate_limits=g.rate_limits,
            created_at=iso(g.created_at),
            last_updated_at=iso(g.last_updated_at),
        )
        for g in grants
    ]
    return IntegrationWorkspacesOut(total=len(listed), workspaces=listed, global_workspace_access=global_access_of(row))


async def resolved_workspaces(session: AsyncSession, ctx: CallContext, refs: list[str]) -> list[str]:
    """Workspace ids for the listed ids or slugs, all of the caller's organisation, each listed once."""
    query = select(Workspace.id, Workspace.slug).where(
        Workspace.organisation_id == ctx.principal.organisation_id,
        or_(Workspace.id.in_(refs), Workspace.slug.in_(refs)),
    )
    known: dict[str, str] = {}
    for workspace_id, slug in (await session.execute(query)).all():
        known[workspace_id] = known[slug] = workspace_id
    resolved: list[str] = []
    for index, ref in enumerate(refs):
        if ref not in known:
            raise NotFound(f"No workspace '{ref}' in this organisation.", param=f"workspaces.{index}.id")
        if known[ref] in resolved:
            raise InvalidRequest(f"Workspace '{ref}' is listed twice.", param=f"workspaces.{index}.id")
        resolved.append(known[ref])
    return resolved


def apply(grant: IntegrationWorkspace, access: WorkspaceAccessIn, stamp: int) -> None:
    grant.enabled = access.enabled
    if "usage_limits" in access.model_fields_set:
        grant.usage_limits = stored_list(access.usage_limits)
    if "rate_limits" in access.model_fields_set:
        grant.rate_limits = stored_list(access.rate_limits)
    grant.last_updated_at = stamp


async def grant_all(session: AsyncSession, ctx: CallContext, row: Integration, args: UpdateWorkspacesInput) -> None:
    stamp = now()
    workspace_ids = await resolved_workspaces(session, ctx, [access.id for access in args.workspaces])
    query = select(IntegrationWorkspace).where(IntegrationWorkspace.integration_id == row.id)
    existing = {grant.workspace_id: grant for grant in (await session.execute(query)).scalars()}
    for index, (workspace_id, access) in enumerate(zip(workspace_ids, args.workspaces, strict=True)):
        grant = existing.pop(workspace_id, None)
        if grant is None:
            grant = IntegrationWorkspace(integration_id=row.id, workspace_id=workspace_id, created_at=stamp)
            session.add(grant)
        apply(grant, access, stamp)
        wanted = (
            args.create_default_provider if access.create_default_provider is None else access.create_default_provider
        )
        if access.enabled and wanted:
            own = access.default_provider_slug
            param = f"workspaces.{index}.default_provider_slug" if own else "default_provider_slug"
            provider = await default_provider(session, row, workspace_id, own or args.default_provider_slug, param)
            if provider is not None:
                session.add(provider)
    if args.override_existing_workspace_access:
        for grant in existing.values():
            await session.delete(grant)


@operation(
    name="integrations_workspaces_list",
    summary="Show which workspaces may use an integration (per-workspace grants with limits, and global access).",
    toolset=TOOLSET,
    plane="control",
    input_model=IntegrationSlugInput,
    output_model=IntegrationWorkspacesOut,
    scope="integrations.read",
    method="GET",
    path="/integrations/{slug}/workspaces",
    read_only=True,
    idempotent=True,
)
async def list_access(ctx: CallContext, args: IntegrationSlugInput) -> IntegrationWorkspacesOut:
    row = await load_integration(ctx, args.slug, admin_action="reading workspace access")
    return await access_of(ctx, row)


@operation(
    name="integrations_workspaces_update",
    summary="Grant or refuse workspaces the use of an integration, with limits, or open it to all; granting "
    "creates a default provider '@<integration-slug>' in the workspace.",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateWorkspacesInput,
    output_model=IntegrationWorkspacesOut,
    scope="integrations.update",
    method="PUT",
    path="/integrations/{slug}/workspaces",
    idempotent=True,
)
async def update_access(ctx: CallContext, args: UpdateWorkspacesInput) -> IntegrationWorkspacesOut:
    row = await load_integration(ctx, args.slug, admin_action="changing workspace access")
    not_workspace_scoped(row, "workspaces")
    async with ctx.services.sessions() as session, session.begin():
        await grant_all(session, ctx, row, args)
        if args.global_workspace_access is not None:
            row.global_access = args.global_workspace_access.enabled
            row.global_usage_limits = stored_list(args.global_workspace_access.usage_limits)
            row.global_rate_limits = stored_list(args.global_workspace_access.rate_limits)
        row.last_updated_at = now()
        await session.merge(row)
    forget_providers(ctx.services)
    return await access_of(ctx, row)
