"""API keys (`/api-keys*`): stored hashed, shown once at creation, masked ever after.

Who may manage which key: the scope family of the key's type (`workspace_service_api_keys.create`, …), and only
within reach: an organisation key reaches every key of its organisation, a workspace key only its workspace's.
A key can grant only scopes it holds itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from control_plane.scopes import ALL_SCOPES, KEY_ADMIN_FAMILY, WORKSPACE_SCOPES
from control_plane.workspaces import iso
from control_plane.workspaces import load as load_workspace
from portico.auth import forget_key
from portico.context import CallContext, Principal
from portico.db.models import ApiKey
from portico.errors import InvalidRequest, NotFound, PermissionDenied
from portico.ids import hash_secret, mask_key, new_api_key, new_uuid, now
from portico.pagination import PageParams, PortkeyPage, page_rows
from portico.registry import operation
from portico.wire import OmitNoneModel

KeyType = Literal["organisation-service", "workspace-service", "workspace-user"]


class RateLimit(BaseModel):
    type: str = "requests"
    unit: str = "rpm"
    value: int = Field(ge=0)


class KeyDefaults(BaseModel):
    metadata: dict[str, Any] = Field(default_factory=dict)
    config_id: str | None = None


class KeyFields(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    rate_limits: list[RateLimit] | None = None
    usage_limits: dict[str, Any] | None = None
    scopes: list[str] | None = Field(None, description="Scopes such as 'completions.write'; at most the caller's.")
    defaults: KeyDefaults | None = None
    alert_emails: list[str] | None = None


class CreateApiKeyInput(KeyFields):
    type: Literal["organisation", "workspace"] = Field(description="'organisation' or 'workspace' key.")
    sub_type: Literal["user", "service"] = Field(description="'service' (for programs) or 'user' (for a person).")
    name: str = Field(min_length=1, max_length=255)
    scopes: list[str] = Field(description="Scopes such as 'completions.write'; at most the caller's.")
    workspace_id: str | None = Field(None, description="Required for workspace keys: the workspace id or slug.")
    user_id: str | None = Field(None, description="Required when sub_type is 'user'.")
    expires_at: str | None = Field(None, description="ISO 8601 date-time after which the key stops working.")


class CreatedApiKey(BaseModel):
    id: str
    key: str = Field(description="The secret. Shown once: store it now.")
    object: Literal["api-key"] = "api-key"


class ApiKeyOut(OmitNoneModel):
    id: str
    key: str
    name: str
    description: str | None
    type: str
    organisation_id: str
    workspace_id: str | None
    user_id: str | None
    status: str
    created_at: str
    last_updated_at: str
    creation_mode: str
    rate_limits: list[dict[str, Any]]
    usage_limits: dict[str, Any] | None
    scopes: list[str]
    defaults: dict[str, Any]
    alert_emails: list[str]
    expires_at: str | None
    object: Literal["api-key"] = "api-key"


class ApiKeyList(PortkeyPage[ApiKeyOut]):
    pass


class ApiKeyIdInput(BaseModel):
    id: str = Field(description="The API key's id (a UUID).")


class UpdateApiKeyInput(KeyFields, ApiKeyIdInput):
    pass


class ListApiKeysInput(PageParams):
    workspace_id: str | None = Field(None, description="Only keys of this workspace.")


class DeletedApiKey(BaseModel):
    id: str
    object: Literal["api-key"] = "api-key"
    deleted: bool = True


def to_wire(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        key=row.key_mask,
        name=row.name,
        description=row.description,
        type=row.key_type,
        organisation_id=row.organisation_id,
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        status=row.status,
        created_at=iso(row.created_at),
        last_updated_at=iso(row.last_updated_at),
        creation_mode=row.creation_mode,
        rate_limits=row.rate_limits,
        usage_limits=row.usage_limits,
        scopes=row.scopes,
        defaults=row.defaults,
        alert_emails=row.alert_emails,
        expires_at=iso(row.expires_at) if row.expires_at else None,
    )


def check_grantable(principal: Principal, key_type: str, scopes: list[str]) -> None:
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise InvalidRequest(f"Unknown scopes: {unknown}.", param="scopes", code="unknown_scope")
    if key_type != "organisation-service":
        beyond = sorted(set(scopes) - WORKSPACE_SCOPES)
        if beyond:
            raise InvalidRequest(f"Workspace keys cannot hold {beyond}.", param="scopes", code="scope_not_allowed")
    excess = sorted(set(scopes) - principal.scopes)
    if excess:
        raise PermissionDenied(f"A key cannot grant scopes it lacks: {excess}.", code="scope_escalation")


def key_type_of(args: CreateApiKeyInput) -> str:
    combined = f"{args.type}-{args.sub_type}"
    if combined not in KEY_ADMIN_FAMILY:
        raise InvalidRequest("Organisation keys are service keys: use sub_type 'service'.", param="sub_type")
    return combined


def parse_expiry(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise InvalidRequest("expires_at must be an ISO 8601 date-time.", param="expires_at") from None


async def _load(ctx: CallContext, key_id: str, action: str) -> ApiKey:
    query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.organisation_id == ctx.principal.organisation_id)
    if ctx.principal.workspace_id is not None:
        query = query.where(ApiKey.workspace_id == ctx.principal.workspace_id)
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound.object("API key", key_id, param="id")
    ctx.principal.require(f"{KEY_ADMIN_FAMILY[row.key_type]}.{action}")
    return row


@operation(
    name="api_keys_create",
    summary="Create an API key (organisation or workspace; service or user) with scopes; the secret is shown once.",
    toolset="admin",
    plane="control",
    input_model=CreateApiKeyInput,
    output_model=CreatedApiKey,
    scope=None,  # depends on the key type: checked in the handler
    method="POST",
    path="/api-keys/{type}/{sub-type}",
)
async def create(ctx: CallContext, args: CreateApiKeyInput) -> CreatedApiKey:
    key_type = key_type_of(args)
    ctx.principal.require(f"{KEY_ADMIN_FAMILY[key_type]}.create")
    workspace_id = None
    if key_type != "organisation-service":
        if not args.workspace_id and ctx.principal.workspace_id is None:
            raise InvalidRequest("workspace_id is required for workspace keys.", param="workspace_id")
        workspace_id = (await load_workspace(ctx, args.workspace_id or ctx.principal.workspace_id or "")).id
    if args.sub_type == "user" and not args.user_id:
        raise InvalidRequest("user_id is required for user keys.", param="user_id")
    check_grantable(ctx.principal, key_type, args.scopes)
    secret = new_api_key()
    stamp = now()
    row = ApiKey(
        id=new_uuid(),
        organisation_id=ctx.principal.organisation_id,
        workspace_id=workspace_id,
        key_type=key_type,
        user_id=args.user_id,
        name=args.name,
        description=args.description,
        key_hash=hash_secret(secret),
        key_mask=mask_key(secret),
        scopes=sorted(set(args.scopes)),
        defaults=args.defaults.model_dump() if args.defaults else {},
        rate_limits=[r.model_dump() for r in args.rate_limits or []],
        usage_limits=args.usage_limits,
        alert_emails=args.alert_emails or [],
        expires_at=parse_expiry(args.expires_at),
        created_at=stamp,
        last_updated_at=stamp,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
    return CreatedApiKey(id=row.id, key=secret)


@operation(
    name="api_keys_list",
    summary="List API keys (masked) the caller may see; filter by workspace_id; page with current_page/page_size.",
    toolset="admin",
    plane="control",
    input_model=ListApiKeysInput,
    output_model=ApiKeyList,
    scope=None,  # each key type needs its own `.list` scope: filtered in the handler
    method="GET",
    path="/api-keys",
    read_only=True,
    idempotent=True,
)
async def list_keys(ctx: CallContext, args: ListApiKeysInput) -> ApiKeyList:
    visible = [t for t, family in KEY_ADMIN_FAMILY.items() if f"{family}.list" in ctx.principal.scopes]
    query = select(ApiKey).where(ApiKey.organisation_id == ctx.principal.organisation_id, ApiKey.key_type.in_(visible))
    if ctx.principal.workspace_id is not None:
        query = query.where(ApiKey.workspace_id == ctx.principal.workspace_id)
    if args.workspace_id:
        query = query.where(ApiKey.workspace_id == (await load_workspace(ctx, args.workspace_id)).id)
    async with ctx.services.sessions() as session:
        rows, total = await page_rows(session, query, args, ApiKey.created_at.desc(), ApiKey.id.desc())
    return ApiKeyList(total=total, data=[to_wire(r) for r in rows])


@operation(
    name="api_keys_retrieve",
    summary="Get one API key's settings (the secret itself is never shown again).",
    toolset="admin",
    plane="control",
    input_model=ApiKeyIdInput,
    output_model=ApiKeyOut,
    scope=None,  # depends on the key type: checked in the handler
    method="GET",
    path="/api-keys/{id}",
    read_only=True,
    idempotent=True,
)
async def retrieve(ctx: CallContext, args: ApiKeyIdInput) -> ApiKeyOut:
    return to_wire(await _load(ctx, args.id, "read"))


@operation(
    name="api_keys_update",
    summary="Change an API key's name, description, scopes, limits or defaults (its type cannot change).",
    toolset="admin",
    plane="control",
    input_model=UpdateApiKeyInput,
    output_model=ApiKeyOut,
    scope=None,  # depends on the key type: checked in the handler
    method="PUT",
    path="/api-keys/{id}",
    idempotent=True,
)
async def update(ctx: CallContext, args: UpdateApiKeyInput) -> ApiKeyOut:
    row = await _load(ctx, args.id, "update")
    if args.scopes is not None:
        check_grantable(ctx.principal, row.key_type, args.scopes)
        row.scopes = sorted(set(args.scopes))
    for name in ("name", "description", "usage_limits", "alert_emails"):
        if name in args.model_fields_set:
            setattr(row, name, getattr(args, name))
    if args.rate_limits is not None:
        row.rate_limits = [r.model_dump() for r in args.rate_limits]
    if args.defaults is not None:
        row.defaults = args.defaults.model_dump()
    row.last_updated_at = now()
    async with ctx.services.sessions() as session, session.begin():
        await session.merge(row)
    forget_key(ctx.services, row.key_hash)
    return to_wire(row)


@operation(
    name="api_keys_delete",
    summary="Revoke and delete an API key; requests using it fail from then on. Irreversible.",
    toolset="admin",
    plane="control",
    input_model=ApiKeyIdInput,
    output_model=DeletedApiKey,
    scope=None,  # depends on the key type: checked in the handler
    method="DELETE",
    path="/api-keys/{id}",
    destructive=True,
)
async def delete_key(ctx: CallContext, args: ApiKeyIdInput) -> DeletedApiKey:
    row = await _load(ctx, args.id, "delete")
    if row.id == ctx.principal.api_key_id:
        raise InvalidRequest("A key cannot delete itself.", param="id", code="self_delete")
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(ApiKey).where(ApiKey.id == row.id))
    forget_key(ctx.services, row.key_hash)
    return DeletedApiKey(id=row.id)
