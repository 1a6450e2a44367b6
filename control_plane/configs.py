"""Routing configs (`/configs*`): named, versioned routing trees requests select with `x-portkey-config: <slug>`.

Every update writes a new version; the config points at its current one, and `/configs/{slug}/versions` lists them
all, newest first.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field
from sqlalchemy import delete, func, select

from control_plane.virtual_keys import acting_workspace
from control_plane.workspaces import iso
from gateway.config_model import parse_config
from portico.context import CallContext
from portico.db.credentials import RoutingConfig, RoutingConfigVersion
from portico.errors import NotFound
from portico.ids import new_uuid, now
from portico.pagination import PageParams
from portico.registry import operation

TOOLSET = "gateway-admin"


class CreateConfigInput(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    config: dict[str, Any] = Field(description="The routing tree: strategy, targets, retry, override_params, …")
    # The spec says isDefault; the portkey-ai SDK sends is_default.
    is_default: int = Field(0, ge=0, le=1, validation_alias=AliasChoices("is_default", "isDefault"))
    workspace_id: str | None = None


class UpdateConfigInput(BaseModel):
    slug: str
    name: str | None = Field(None, min_length=1, max_length=255)
    config: dict[str, Any] | None = None
    status: Literal["active", "archived"] | None = None
    workspace_id: str | None = None


class ConfigSlugInput(BaseModel):
    slug: str = Field(description="The config's slug, e.g. 'pc-fallback-1a2b3c'.")
    workspace_id: str | None = None


class ListConfigsInput(PageParams):
    workspace_id: str | None = None


class ConfigSummary(BaseModel):
    id: str
    name: str
    slug: str
    organisation_id: str
    workspace_id: str
    is_default: int
    status: str
    owner_id: str
    updated_by: str
    created_at: str
    last_updated_at: str


class ConfigDetail(ConfigSummary):
    config: dict[str, Any]
    version_id: str


class Envelope(BaseModel):
    success: bool = True
    data: Any


class ConfigVersion(BaseModel):
    id: str
    version_id: str
    slug: str
    name: str
    workspace_id: str
    organisation_id: str
    is_default: int
    status: str
    owner_id: str
    updated_by: str
    created_at: str
    last_updated_at: str
    config: str = Field(description="The version's routing tree, serialised.")
    format: str = "json"
    type: str = "ROUTING_CONFIG"
    object: Literal["config"] = "config"


class ConfigVersionList(BaseModel):
    object: Literal["list"] = "list"
    total: int
    data: list[ConfigVersion]


def summary(ctx: CallContext, row: RoutingConfig, updated_by: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "slug": row.slug,
        "organisation_id": ctx.principal.organisation_id,
        "workspace_id": row.workspace_id,
        "is_default": row.is_default,
        "status": row.status,
        "owner_id": row.owner_key_id,
        "updated_by": updated_by,
        "created_at": iso(row.created_at),
        "last_updated_at": iso(row.last_updated_at),
    }


async def load(ctx: CallContext, slug: str, workspace_id: str | None = None) -> RoutingConfig:
    workspace = await acting_workspace(ctx, workspace_id)
    query = select(RoutingConfig).where(RoutingConfig.workspace_id == workspace, RoutingConfig.slug == slug)
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No config '{slug}' in this workspace.", param="slug", code="not_found")
    return row


async def current_body(ctx: CallContext, row: RoutingConfig) -> RoutingConfigVersion:
    async with ctx.services.sessions() as session:
        return (
            await session.execute(
                select(RoutingConfigVersion).where(RoutingConfigVersion.version_id == row.current_version_id)
            )
        ).scalar_one()


def new_slug(name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "config"
    return f"pc-{stem}-{secrets.token_hex(3)}"


@operation(
    name="configs_create",
    summary="Save a routing config (fallback, loadbalance, retry, overrides over virtual keys) under a slug.",
    toolset=TOOLSET,
    plane="control",
    input_model=CreateConfigInput,
    output_model=Envelope,
    scope="configs.create",
    method="POST",
    path="/configs",
)
async def create(ctx: CallContext, args: CreateConfigInput) -> Envelope:
    parse_config(args.config)
    stamp = now()
    config_id, version_id = new_uuid(), new_uuid()
    row = RoutingConfig(
        id=config_id,
        workspace_id=await acting_workspace(ctx, args.workspace_id),
        slug=new_slug(args.name),
        name=args.name,
        is_default=args.is_default,
        current_version_id=version_id,
        owner_key_id=ctx.principal.api_key_id,
        created_at=stamp,
        last_updated_at=stamp,
    )
    version = RoutingConfigVersion(
        version_id=version_id,
        config_id=config_id,
        name=args.name,
        body=args.config,
        updated_by=ctx.principal.api_key_id,
        created_at=stamp,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
        await session.flush()
        session.add(version)
    return Envelope(data={"id": config_id, "version_id": version_id, "slug": row.slug})


@operation(
    name="configs_list",
    summary="List the workspace's routing configs.",
    toolset=TOOLSET,
    plane="control",
    input_model=ListConfigsInput,
    output_model=Envelope,
    scope="configs.list",
    method="GET",
    path="/configs",
    read_only=True,
    idempotent=True,
)
async def list_configs(ctx: CallContext, args: ListConfigsInput) -> Envelope:
    workspace = await acting_workspace(ctx, args.workspace_id)
    query = (
        select(RoutingConfig)
        .where(RoutingConfig.workspace_id == workspace)
        .order_by(RoutingConfig.created_at.desc(), RoutingConfig.id.desc())
        .offset(args.current_page * args.page_size)
        .limit(args.page_size)
    )
    async with ctx.services.sessions() as session:
        rows = (await session.execute(query)).scalars().all()
    return Envelope(data=[ConfigSummary(**summary(ctx, r, r.owner_key_id)) for r in rows])


@operation(
    name="configs_retrieve",
    summary="Get a routing config and its current routing tree by slug.",
    toolset=TOOLSET,
    plane="control",
    input_model=ConfigSlugInput,
    output_model=Envelope,
    scope="configs.read",
    method="GET",
    path="/configs/{slug}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://configs/{slug}",
)
async def retrieve(ctx: CallContext, args: ConfigSlugInput) -> Envelope:
    row = await load(ctx, args.slug, args.workspace_id)
    version = await current_body(ctx, row)
    detail = ConfigDetail(**summary(ctx, row, version.updated_by), config=version.body, version_id=version.version_id)
    return Envelope(data=detail)


@operation(
    name="configs_update",
    summary="Change a routing config; a new version is written and becomes current.",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateConfigInput,
    output_model=Envelope,
    scope="configs.update",
    method="PUT",
    path="/configs/{slug}",
)
async def update(ctx: CallContext, args: UpdateConfigInput) -> Envelope:
    row = await load(ctx, args.slug, args.workspace_id)
    body = args.config if args.config is not None else (await current_body(ctx, row)).body
    parse_config(body)
    version = RoutingConfigVersion(
        version_id=new_uuid(),
        config_id=row.id,
        name=args.name or row.name,
        body=body,
        updated_by=ctx.principal.api_key_id,
        created_at=now(),
    )
    row.name = version.name
    row.status = args.status or row.status
    row.current_version_id = version.version_id
    row.last_updated_at = version.created_at
    async with ctx.services.sessions() as session, session.begin():
        session.add(version)
        await session.merge(row)
    return Envelope(data={"version_id": version.version_id})


@operation(
    name="configs_delete",
    summary="Delete a routing config and all its versions. Irreversible.",
    toolset=TOOLSET,
    plane="control",
    input_model=ConfigSlugInput,
    output_model=Envelope,
    scope="configs.delete",
    method="DELETE",
    path="/configs/{slug}",
    destructive=True,
)
async def delete_config(ctx: CallContext, args: ConfigSlugInput) -> Envelope:
    row = await load(ctx, args.slug, args.workspace_id)
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(RoutingConfigVersion).where(RoutingConfigVersion.config_id == row.id))
        await session.execute(delete(RoutingConfig).where(RoutingConfig.id == row.id))
    return Envelope(data={"slug": row.slug, "deleted": True})


@operation(
    name="configs_versions",
    summary="List every version of a routing config, newest first.",
    toolset=TOOLSET,
    plane="control",
    input_model=ConfigSlugInput,
    output_model=ConfigVersionList,
    scope="configs.read",
    method="GET",
    path="/configs/{slug}/versions",
    read_only=True,
    idempotent=True,
)
async def versions(ctx: CallContext, args: ConfigSlugInput) -> ConfigVersionList:
    row = await load(ctx, args.slug, args.workspace_id)
    query = (
        select(RoutingConfigVersion)
        .where(RoutingConfigVersion.config_id == row.id)
        .order_by(RoutingConfigVersion.created_at.desc(), RoutingConfigVersion.version_id.desc())
    )
    async with ctx.services.sessions() as session:
        rows = (await session.execute(query)).scalars().all()
        total = (
            await session.execute(select(func.count()).where(RoutingConfigVersion.config_id == row.id))
        ).scalar_one()
    data = [
        ConfigVersion(
            **{**summary(ctx, row, v.updated_by), "name": v.name, "created_at": iso(v.created_at)},
            version_id=v.version_id,
            config=json.dumps(v.body),
        )
        for v in rows
    ]
    return ConfigVersionList(total=int(total), data=data)
