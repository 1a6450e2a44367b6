"""Workspaces (`/admin/workspaces*`): the boundary every data-plane object lives inside."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, exists, or_, select

from portico.auth import forget_key, forget_workspaces
from portico.context import CallContext
from portico.db.credentials import RoutingConfig, VirtualKey
from portico.db.models import ApiKey, File, UploadGrant, Workspace
from portico.errors import Conflict, NotFound
from portico.ids import now
from portico.pagination import PageParams, PortkeyPage, page_rows
from portico.registry import operation


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


class WorkspaceDefaults(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict)
    is_default: int = 0
    object: Literal["workspace"] = "workspace"


class WorkspaceOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str | None
    created_at: str
    last_updated_at: str
    defaults: WorkspaceDefaults
    usage_limits: list[dict[str, Any]]
    rate_limits: list[dict[str, Any]]
    object: Literal["workspace"] = "workspace"


class WorkspaceList(PortkeyPage[WorkspaceOut]):
    pass


class DefaultsIn(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="String key/values attached to requests.")


class CreateWorkspaceInput(BaseModel):
    name: str = Field(min_length=1, max_length=255, description="Display name.")
    description: str | None = Field(None, max_length=2000)
    defaults: DefaultsIn | None = None
    usage_limits: list[dict[str, Any]] = Field(default_factory=list)
    rate_limits: list[dict[str, Any]] = Field(default_factory=list)


class UpdateWorkspaceInput(BaseModel):
    workspace_id: str = Field(description="The workspace's id or slug.")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    defaults: DefaultsIn | None = None
    usage_limits: list[dict[str, Any]] | None = None
    rate_limits: list[dict[str, Any]] | None = None


class WorkspaceIdInput(BaseModel):
    workspace_id: str = Field(description="The workspace's id or slug.")


class ListWorkspacesInput(PageParams):
    name: str | None = Field(None, description="Only workspaces whose name contains this text.")
    exact_name: str | None = Field(None, description="Only the workspace with exactly this name.")


class DeletedWorkspace(BaseModel):
    id: str
    object: Literal["workspace"] = "workspace"
    deleted: bool = True


def to_wire(row: Workspace) -> WorkspaceOut:
    return WorkspaceOut(
        id=row.id,
        slug=row.slug,
        name=row.name,
        description=row.description,
        created_at=iso(row.created_at),
        last_updated_at=iso(row.last_updated_at),
        defaults=WorkspaceDefaults(metadata=row.metadata_, is_default=int(row.is_default)),
        usage_limits=row.usage_limits,
        rate_limits=row.rate_limits,
    )


def new_slug(name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "workspace"
    return f"ws-{stem}-{secrets.token_hex(3)}"


async def load(ctx: CallContext, workspace_id: str) -> Workspace:
    """A workspace of the caller's organisation, by id or slug. A workspace key sees only its own."""
    query = select(Workspace).where(
        Workspace.organisation_id == ctx.principal.organisation_id,
        or_(Workspace.id == workspace_id, Workspace.slug == workspace_id),
    )
    if ctx.principal.workspace_id is not None:
        query = query.where(Workspace.id == ctx.principal.workspace_id)
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound.object("workspace", workspace_id, param="workspace_id")
    return row


@operation(
    name="workspaces_create",
    summary="Create a workspace: an isolated space for files, batches, keys and configs.",
    toolset="admin",
    plane="control",
    input_model=CreateWorkspaceInput,
    output_model=WorkspaceOut,
    scope="workspaces.create",
    method="POST",
    path="/admin/workspaces",
)
async def create(ctx: CallContext, args: CreateWorkspaceInput) -> WorkspaceOut:
    slug = new_slug(args.name)
    stamp = now()
    row = Workspace(
        id=slug,
        slug=slug,
        organisation_id=ctx.principal.organisation_id,
        name=args.name,
        description=args.description,
        is_default=False,
        metadata_=args.defaults.metadata if args.defaults else {},
        usage_limits=args.usage_limits,
        rate_limits=args.rate_limits,
        created_at=stamp,
        last_updated_at=stamp,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
    return to_wire(row)


@operation(
    name="workspaces_list",
    summary="List the organisation's workspaces (page with current_page/page_size); filter by name.",
    toolset="admin",
    plane="control",
    input_model=ListWorkspacesInput,
    output_model=WorkspaceList,
    scope="workspaces.list",
    method="GET",
    path="/admin/workspaces",
    read_only=True,
    idempotent=True,
)
async def list_workspaces(ctx: CallContext, args: ListWorkspacesInput) -> WorkspaceList:
    query = select(Workspace).where(Workspace.organisation_id == ctx.principal.organisation_id)
    if ctx.principal.workspace_id is not None:
        query = query.where(Workspace.id == ctx.principal.workspace_id)
    if args.exact_name is not None:
        query = query.where(Workspace.name == args.exact_name)
    elif args.name:
        query = query.where(Workspace.name.contains(args.name, autoescape=True))
    async with ctx.services.sessions() as session:
        rows, total = await page_rows(session, query, args, Workspace.created_at.desc(), Workspace.id.desc())
    return WorkspaceList(total=total, data=[to_wire(r) for r in rows])


@operation(
    name="workspaces_retrieve",
    summary="Get one workspace by id or slug.",
    toolset="admin",
    plane="control",
    input_model=WorkspaceIdInput,
    output_model=WorkspaceOut,
    scope="workspaces.read",
    method="GET",
    path="/admin/workspaces/{workspaceId}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://workspaces/{workspace_id}",
)
async def retrieve(ctx: CallContext, args: WorkspaceIdInput) -> WorkspaceOut:
    return to_wire(await load(ctx, args.workspace_id))


@operation(
    name="workspaces_update",
    summary="Change a workspace's name, description, default metadata or limits.",
    toolset="admin",
    plane="control",
    input_model=UpdateWorkspaceInput,
    output_model=WorkspaceOut,
    scope="workspaces.update",
    method="PUT",
    path="/admin/workspaces/{workspaceId}",
    idempotent=True,
)
async def update(ctx: CallContext, args: UpdateWorkspaceInput) -> WorkspaceOut:
    row = await load(ctx, args.workspace_id)
    changes = args.model_dump(exclude_unset=True, exclude={"workspace_id", "defaults"})
    for field_name, value in changes.items():
        setattr(row, field_name, value)
    if args.defaults is not None:
        row.metadata_ = args.defaults.metadata
    row.last_updated_at = now()
    async with ctx.services.sessions() as session, session.begin():
        await session.merge(row)
    return to_wire(row)


@operation(
    name="workspaces_delete",
    summary="Delete an empty workspace and revoke its API keys. Refused for the default or a non-empty workspace.",
    toolset="admin",
    plane="control",
    input_model=WorkspaceIdInput,
    output_model=DeletedWorkspace,
    scope="workspaces.delete",
    method="DELETE",
    path="/admin/workspaces/{workspaceId}",
    destructive=True,
)
async def delete_workspace(ctx: CallContext, args: WorkspaceIdInput) -> DeletedWorkspace:
    row = await load(ctx, args.workspace_id)
    if row.is_default:
        raise Conflict("The default workspace cannot be deleted.", param="workspace_id", code="default_workspace")
    async with ctx.services.sessions() as session, session.begin():
        for kind, column in (
            ("files", File.workspace_id),
            ("virtual keys", VirtualKey.workspace_id),
            ("configs", RoutingConfig.workspace_id),
        ):
            if (await session.execute(select(exists().where(column == row.id)))).scalar():
                raise Conflict(
                    f"This workspace still holds {kind}; delete them first.", param="workspace_id", code="not_empty"
                )
        revoked = (await session.execute(select(ApiKey.key_hash).where(ApiKey.workspace_id == row.id))).scalars().all()
        await session.execute(delete(UploadGrant).where(UploadGrant.workspace_id == row.id))
        await session.execute(delete(ApiKey).where(ApiKey.workspace_id == row.id))
        await session.execute(delete(Workspace).where(Workspace.id == row.id))
    for key_hash in revoked:
        forget_key(ctx.services, key_hash)
    forget_workspaces(ctx.services)
    return DeletedWorkspace(id=row.id)
