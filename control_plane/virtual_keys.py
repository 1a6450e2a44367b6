"""Virtual keys (`/virtual-keys*`): a provider's credentials stored once, used by slug.

Secret fields (API keys, AWS secrets, service-account JSON) are sealed with `portico.secrets.SecretBox` and never
leave the server again: responses carry only the provider's non-secret settings in `model_config`.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from control_plane.provider_fields import check_required, partition, spec_for
from control_plane.workspaces import iso
from gateway.virtual_key_cache import forget_virtual_key
from portico.auth import resolve_workspace
from portico.context import CallContext
from portico.db.credentials import VirtualKey
from portico.errors import InvalidRequest, NotFound
from portico.ids import new_uuid, now
from portico.pagination import PageParams, PortkeyPage, page_rows
from portico.registry import operation
from portico.secrets import SecretBox
from portico.wire import OmitNoneModel
from providers.catalogue import CONFIG_FIELDS, SECRET_FIELDS

TOOLSET = "gateway-admin"


class VirtualKeyFields(BaseModel):
    # Provider-specific fields arrive as top-level keys (awsRegion, vertexProjectId, …), as Portkey's API takes them.
    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, min_length=1, max_length=255)
    key: str | None = Field(None, description="The provider API key (secret; never shown again).")
    note: str | None = Field(None, max_length=2000)
    usage_limits: dict[str, Any] | None = None
    rate_limits: list[dict[str, Any]] | None = None
    workspace_id: str | None = Field(None, description="Organisation keys: the workspace to act in.")


class CreateVirtualKeyInput(VirtualKeyFields):
    name: str = Field(min_length=1, max_length=255)
    provider: str = Field(description="e.g. 'openai', 'bedrock', 'vertex-ai', 'groq'.")


class UpdateVirtualKeyInput(VirtualKeyFields):
    slug: str


class SlugInput(BaseModel):
    slug: str = Field(description="The virtual key's slug.")
    workspace_id: str | None = Field(None, description="Organisation keys: the workspace to act in.")


class ListVirtualKeysInput(PageParams):
    workspace_id: str | None = None


class SlugData(BaseModel):
    slug: str


class CreatedVirtualKey(BaseModel):
    success: bool = True
    data: SlugData


class VirtualKeyOut(OmitNoneModel):
    model_config = ConfigDict(protected_namespaces=(), serialize_by_alias=True)

    slug: str
    name: str
    provider: str
    note: str | None
    status: str
    usage_limits: dict[str, Any] | None
    rate_limits: list[dict[str, Any]] | None
    model_config_: dict[str, Any] = Field(serialization_alias="model_config")
    created_at: str
    expires_at: str | None
    object: Literal["virtual-key"] = "virtual-key"


class VirtualKeyList(PortkeyPage[VirtualKeyOut]):
    pass


class DeletedVirtualKey(BaseModel):
    success: bool = True
    slug: str
    object: Literal["virtual-key"] = "virtual-key"
    deleted: bool = True


def to_wire(row: VirtualKey) -> VirtualKeyOut:
    return VirtualKeyOut(
        slug=row.slug,
        name=row.name,
        provider=row.provider,
        note=row.note,
        status=row.status,
        usage_limits=row.usage_limits,
        rate_limits=row.rate_limits,
        model_config_=row.model_config_,
        created_at=iso(row.created_at),
        expires_at=iso(row.expires_at) if row.expires_at else None,
    )


def split_fields(args: VirtualKeyFields) -> tuple[dict[str, Any], dict[str, Any]]:
    """(secrets, settings) from the request; unknown extra fields are refused so a typo is not silently lost."""
    extra = dict(args.model_extra or {})
    extra.pop("provider", None)
    unknown = sorted(set(extra) - SECRET_FIELDS - CONFIG_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown virtual key fields: {unknown}.", param=unknown[0], code="unknown_field")
    return partition({**extra, **({"key": args.key} if args.key is not None else {})})


async def acting_workspace(ctx: CallContext, requested: str | None) -> str:
    """The workspace a control-plane write lands in: a workspace key's own; an organisation key's choice."""
    if not requested or requested == ctx.workspace_id:
        return ctx.workspace_id
    return await resolve_workspace(ctx.services, ctx.principal, requested)


async def load(ctx: CallContext, slug: str, workspace_id: str | None = None) -> VirtualKey:
    workspace = await acting_workspace(ctx, workspace_id)
    async with ctx.services.sessions() as session:
        row = (
            await session.execute(
                select(VirtualKey).where(VirtualKey.workspace_id == workspace, VirtualKey.slug == slug)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No virtual key '{slug}' in this workspace.", param="slug", code="not_found")
    return row


def new_slug(name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "key"
    return f"{stem}-{secrets.token_hex(3)}"


@operation(
    name="virtual_keys_create",
    summary="Store a provider's credentials as a virtual key; requests then select it by slug (secrets never shown).",
    toolset=TOOLSET,
    plane="control",
    input_model=CreateVirtualKeyInput,
    output_model=CreatedVirtualKey,
    scope="virtual_keys.create",
    method="POST",
    path="/virtual-keys",
)
async def create(ctx: CallContext, args: CreateVirtualKeyInput) -> CreatedVirtualKey:
    spec = spec_for(args.provider)
    sealed, settings = split_fields(args)
    check_required(spec, {**sealed, **settings})
    stamp = now()
    row = VirtualKey(
        id=new_uuid(),
        workspace_id=await acting_workspace(ctx, args.workspace_id),
        slug=new_slug(args.name),
        name=args.name,
        provider=spec.name,
        note=args.note,
        sealed_secrets=SecretBox.from_settings(ctx.settings).seal(sealed),
        model_config_=settings,
        usage_limits=args.usage_limits,
        rate_limits=args.rate_limits,
        created_at=stamp,
        last_updated_at=stamp,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
    return CreatedVirtualKey(data=SlugData(slug=row.slug))


@operation(
    name="virtual_keys_list",
    summary="List the workspace's virtual keys (provider and settings; never the secrets).",
    toolset=TOOLSET,
    plane="control",
    input_model=ListVirtualKeysInput,
    output_model=VirtualKeyList,
    scope="virtual_keys.list",
    method="GET",
    path="/virtual-keys",
    read_only=True,
    idempotent=True,
)
async def list_keys(ctx: CallContext, args: ListVirtualKeysInput) -> VirtualKeyList:
    workspace = await acting_workspace(ctx, args.workspace_id)
    query = select(VirtualKey).where(VirtualKey.workspace_id == workspace)
    async with ctx.services.sessions() as session:
        rows, total = await page_rows(session, query, args, VirtualKey.created_at.desc(), VirtualKey.id.desc())
    return VirtualKeyList(total=total, data=[to_wire(r) for r in rows])


@operation(
    name="virtual_keys_retrieve",
    summary="Get one virtual key by slug (provider and settings; never the secrets).",
    toolset=TOOLSET,
    plane="control",
    input_model=SlugInput,
    output_model=VirtualKeyOut,
    scope="virtual_keys.read",
    method="GET",
    path="/virtual-keys/{slug}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://virtual-keys/{slug}",
)
async def retrieve(ctx: CallContext, args: SlugInput) -> VirtualKeyOut:
    return to_wire(await load(ctx, args.slug, args.workspace_id))


@operation(
    name="virtual_keys_update",
    summary="Rotate a virtual key's secret or change its name, note, settings or limits.",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateVirtualKeyInput,
    output_model=VirtualKeyOut,
    scope="virtual_keys.update",
    method="PUT",
    path="/virtual-keys/{slug}",
    idempotent=True,
)
async def update(ctx: CallContext, args: UpdateVirtualKeyInput) -> VirtualKeyOut:
    row = await load(ctx, args.slug, args.workspace_id)
    sealed, settings = split_fields(args)
    if sealed:
        box = SecretBox.from_settings(ctx.settings)
        row.sealed_secrets = box.seal({**box.open(row.sealed_secrets), **sealed})
    row.model_config_ = {**row.model_config_, **settings}
    for name in ("name", "note", "usage_limits", "rate_limits"):
        if name in args.model_fields_set:
            setattr(row, name, getattr(args, name))
    row.last_updated_at = now()
    async with ctx.services.sessions() as session, session.begin():
        await session.merge(row)
    forget_virtual_key(ctx.services, row.workspace_id, row.slug)
    return to_wire(row)


@operation(
    name="virtual_keys_delete",
    summary="Delete a virtual key; requests naming it fail from then on. Irreversible.",
    toolset=TOOLSET,
    plane="control",
    input_model=SlugInput,
    output_model=DeletedVirtualKey,
    scope="virtual_keys.delete",
    method="DELETE",
    path="/virtual-keys/{slug}",
    destructive=True,
)
async def delete_key(ctx: CallContext, args: SlugInput) -> DeletedVirtualKey:
    row = await load(ctx, args.slug, args.workspace_id)
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(VirtualKey).where(VirtualKey.id == row.id))
    forget_virtual_key(ctx.services, row.workspace_id, row.slug)
    return DeletedVirtualKey(slug=row.slug)
