"""Integrations (`/integrations*`): an organisation's credentials for one provider, stored once and shared with the
workspaces allowed to use them, which route to them through providers (`/providers`, `@slug`).

Secrets (the provider key, AWS secrets, a service-account JSON, …) are sealed with `portico.secrets.SecretBox`
exactly like a virtual key's and never returned: reads show settings as they are and secrets only masked, as the
spec's `masked_key` and `masked_<field>`. An integration created with `workspace_id` is scoped to that workspace
(and gets a default provider there); without one it is organisation-level, shared through
`/integrations/{slug}/workspaces`. Its allowed models live under `/integrations/{slug}/models`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from control_plane.integration_access import (
    SLUG_PATTERN,
    load_integration,
    named_workspace,
    require_organisation_key,
    usable_by,
    writing,
)
from control_plane.integration_workspaces import GlobalAccessOut, global_access_of, workspace_count
from control_plane.provider_access import forget_providers
from control_plane.provider_fields import (
    check_required,
    integration_param,
    masks_of,
    read_configuration,
    shown_configuration,
    spec_for,
)
from control_plane.providers import default_provider
from control_plane.virtual_keys import new_slug
from control_plane.workspaces import iso
from portico.context import CallContext
from portico.db.integrations import Integration, IntegrationModel, IntegrationWorkspace, Provider
from portico.errors import Conflict, InvalidRequest
from portico.ids import new_uuid, now
from portico.pagination import PageParams, PortkeyPage, page_rows
from portico.registry import operation
from portico.secrets import SecretBox
from portico.wire import OmitNoneModel

TOOLSET = "gateway-admin"


class IntegrationFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    key: str | None = Field(None, description="The provider's API key (secret; never shown again, only masked).")
    # The spec's update example sends `note`; its schema says `description`. Both are read.
    description: str | None = Field(None, max_length=2000, validation_alias=AliasChoices("description", "note"))
    configurations: dict[str, Any] | None = Field(
        None,
        description="Provider settings in snake_case, e.g. {'aws_region': 'us-east-1', 'aws_access_key_id': …, "
        "'aws_secret_access_key': …} or {'vertex_region': …, 'vertex_project_id': …, 'vertex_service_account_json': "
        "{…}}. Secret fields are sealed. On update, fields merge; null removes one.",
    )
    secret_mappings: list[dict[str, Any]] | None = Field(None, description="Not supported: send the secrets.")


class CreateIntegrationInput(IntegrationFields):
    name: str = Field(min_length=1, max_length=255)
    ai_provider_id: str = Field(description="The provider: 'openai', 'azure-openai', 'bedrock', 'vertex-ai', 'groq', …")
    slug: str | None = Field(None, max_length=255, pattern=SLUG_PATTERN, description="Made from the name if absent.")
    workspace_id: str | None = Field(None, description="Scope the integration to this one workspace (id or slug).")
    create_default_provider: bool = Field(True, description="Workspace-scoped only: add a provider there at once.")
    default_provider_slug: str | None = Field(None, max_length=255, pattern=SLUG_PATTERN)


class UpdateIntegrationInput(IntegrationFields):
    slug: str = Field(description="The integration's slug.")


class IntegrationSlugInput(BaseModel):
    slug: str = Field(description="The integration's slug.")


class ListIntegrationsInput(PageParams):
    page_size: int = Field(
        100,
        ge=1,
        le=500,
        description="Objects per page (1-500).",
        validation_alias=AliasChoices("page_size", "pageSize"),
    )
    workspace_id: str | None = Field(None, description="Only integrations this workspace may use.")
    type: Literal["workspace", "organisation", "all"] = Field(
        "all", description="'workspace': only workspace-scoped ones; 'organisation': only organisation-level ones."
    )


class CreatedIntegration(BaseModel):
    id: str
    slug: str


class IntegrationOut(OmitNoneModel):
    id: str
    slug: str
    name: str
    description: str | None
    ai_provider_id: str
    organisation_id: str
    workspace_id: str | None
    type: Literal["organisation", "workspace"]
    status: Literal["active", "archived"]
    created_at: str
    last_updated_at: str
    object: Literal["integration"] = "integration"


class IntegrationDetail(IntegrationOut):
    masked_key: str | None
    # Absent when empty: the spec's oneOf over ten configuration schemas cannot tell an empty object apart.
    configurations: dict[str, Any] | None
    global_workspace_access_settings: GlobalAccessOut
    allow_all_models: bool
    workspace_count: int


class IntegrationList(PortkeyPage[IntegrationOut]):
    pass


class DeletedIntegration(BaseModel):
    success: bool = True
    slug: str
    object: Literal["integration"] = "integration"
    deleted: bool = True


def summary_of(row: Integration) -> dict[str, Any]:
    return {
        "id": row.id,
        "slug": row.slug,
        "name": row.name,
        "description": row.description,
        "ai_provider_id": row.ai_provider_id,
        "organisation_id": row.organisation_id,
        "workspace_id": row.workspace_id,
        "type": "organisation" if row.workspace_id is None else "workspace",
        "status": row.status,
        "created_at": iso(row.created_at),
        "last_updated_at": iso(row.last_updated_at),
    }


async def detail_of(ctx: CallContext, row: Integration) -> IntegrationDetail:
    async with ctx.services.sessions() as session:
        count = await workspace_count(session, row)
    return IntegrationDetail(
        **summary_of(row),
        masked_key=row.secret_masks.get("key"),
        configurations=shown_configuration(row.settings, row.secret_masks) or None,
        global_workspace_access_settings=global_access_of(row),
        allow_all_models=row.allow_all_models,
        workspace_count=count,
    )


def refuse_secret_mappings(mappings: list[dict[str, Any]] | None) -> None:
    if mappings:
        raise InvalidRequest(
            "Secret references are not supported: send the secrets in 'key' and 'configurations'.",
            param="secret_mappings",
            code="unsupported_field",
        )


async def scoped_workspace(ctx: CallContext, args: CreateIntegrationInput) -> str | None:
    if args.workspace_id:
        return await named_workspace(ctx, args.workspace_id)
    if args.default_provider_slug:
        raise InvalidRequest(
            "default_provider_slug applies to workspace-scoped integrations only: set workspace_id, or name the "
            "slug when granting access (PUT /integrations/{slug}/workspaces).",
            param="default_provider_slug",
        )
    return None


@operation(
    name="integrations_create",
    summary="Store a provider's credentials once for the organisation (or one workspace) as an integration; "
    "workspaces use it through providers. Secrets are never shown again.",
    toolset=TOOLSET,
    plane="control",
    input_model=CreateIntegrationInput,
    output_model=CreatedIntegration,
    scope="integrations.create",
    method="POST",
    path="/integrations",
)
async def create(ctx: CallContext, args: CreateIntegrationInput) -> CreatedIntegration:
    require_organisation_key(ctx, "creating an integration")
    spec = spec_for(args.ai_provider_id, param="ai_provider_id")
    refuse_secret_mappings(args.secret_mappings)
    found = read_configuration(args.configurations or {}, args.key)
    check_required(spec, {**found.secrets, **found.settings}, "integration", integration_param)
    workspace = await scoped_workspace(ctx, args)
    stamp = now()
    row = Integration(
        id=new_uuid(),
        organisation_id=ctx.principal.organisation_id,
        workspace_id=workspace,
        slug=args.slug or new_slug(args.name),
        name=args.name,
        description=args.description,
        ai_provider_id=spec.name,
        status="active",
        sealed_secrets=SecretBox.from_settings(ctx.settings).seal(found.secrets),
        secret_masks=masks_of(found.secrets),
        settings=found.settings,
        allow_all_models=True,
        global_access=False,
        created_at=stamp,
        last_updated_at=stamp,
    )
    taken = f"The organisation already has an integration '{row.slug}'."
    async with writing(ctx, taken, "slug") as session:
        same_slug = select(Integration.id).where(
            Integration.organisation_id == row.organisation_id, Integration.slug == row.slug
        )
        if (await session.execute(same_slug)).first() is not None:
            raise Conflict(taken, param="slug", code="slug_taken")
        session.add(row)
        await session.flush()  # the default provider refers to it
        if workspace is not None and args.create_default_provider:
            provider = await default_provider(
                session, row, workspace, args.default_provider_slug, "default_provider_slug"
            )
            if provider is not None:
                session.add(provider)
    forget_providers(ctx.services)
    return CreatedIntegration(id=row.id, slug=row.slug)


@operation(
    name="integrations_list",
    summary="List the organisation's integrations (provider credentials; never the secrets), optionally only "
    "those one workspace may use.",
    toolset=TOOLSET,
    plane="control",
    input_model=ListIntegrationsInput,
    output_model=IntegrationList,
    scope="integrations.list",
    method="GET",
    path="/integrations",
    read_only=True,
    idempotent=True,
)
async def list_integrations(ctx: CallContext, args: ListIntegrationsInput) -> IntegrationList:
    query = select(Integration).where(Integration.organisation_id == ctx.principal.organisation_id)
    # The spec: a workspace key's own workspace is enforced, whatever workspace_id says.
    workspace = ctx.principal.workspace_id or (
        await named_workspace(ctx, args.workspace_id) if args.workspace_id else None
    )
    if workspace is not None:
        query = query.where(usable_by(workspace))
    if args.type == "workspace":
        query = query.where(Integration.workspace_id.is_not(None))
    elif args.type == "organisation":
        query = query.where(Integration.workspace_id.is_(None))
    async with ctx.services.sessions() as session:
        rows, total = await page_rows(session, query, args, Integration.created_at.desc(), Integration.id.desc())
    return IntegrationList(total=total, data=[IntegrationOut(**summary_of(row)) for row in rows])


@operation(
    name="integrations_retrieve",
    summary="Get one integration by slug: provider, settings, masked secrets, model policy and workspace reach.",
    toolset=TOOLSET,
    plane="control",
    input_model=IntegrationSlugInput,
    output_model=IntegrationDetail,
    scope="integrations.read",
    method="GET",
    path="/integrations/{slug}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://integrations/{slug}",
)
async def retrieve(ctx: CallContext, args: IntegrationSlugInput) -> IntegrationDetail:
    return await detail_of(ctx, await load_integration(ctx, args.slug))


@operation(
    name="integrations_update",
    summary="Rotate an integration's key, change its settings (merged; null removes a field), name or "
    "description. Every provider using it picks the change up.",
    toolset=TOOLSET,
    plane="control",
    input_model=UpdateIntegrationInput,
    output_model=IntegrationDetail,
    scope="integrations.update",
    method="PUT",
    path="/integrations/{slug}",
    idempotent=True,
)
async def update(ctx: CallContext, args: UpdateIntegrationInput) -> IntegrationDetail:
    row = await load_integration(ctx, args.slug, admin_action="updating an integration")
    refuse_secret_mappings(args.secret_mappings)
    if args.key is not None or args.configurations:
        box = SecretBox.from_settings(ctx.settings)
        found = read_configuration(args.configurations or {}, args.key)
        secrets, settings = found.applied_to(box.open(row.sealed_secrets), row.settings)
        check_required(spec_for(row.ai_provider_id), {**secrets, **settings}, "integration", integration_param)
        row.sealed_secrets, row.secret_masks, row.settings = box.seal(secrets), masks_of(secrets), settings
    if args.name is not None:
        row.name = args.name
    if "description" in args.model_fields_set:
        row.description = args.description
    row.last_updated_at = now()
    async with ctx.services.sessions() as session, session.begin():
        await session.merge(row)
    forget_providers(ctx.services)
    return await detail_of(ctx, row)


@operation(
    name="integrations_delete",
    summary="Delete an integration together with its model list, workspace grants and every provider using it, "
    "in all workspaces. Irreversible.",
    toolset=TOOLSET,
    plane="control",
    input_model=IntegrationSlugInput,
    output_model=DeletedIntegration,
    scope="integrations.delete",
    method="DELETE",
    path="/integrations/{slug}",
    destructive=True,
)
async def delete_integration(ctx: CallContext, args: IntegrationSlugInput) -> DeletedIntegration:
    row = await load_integration(ctx, args.slug, admin_action="deleting an integration")
    async with ctx.services.sessions() as session, session.begin():
        # The schema cascades too; deleting explicitly keeps the rule readable here and independent of it.
        for table in (Provider, IntegrationModel, IntegrationWorkspace):
            await session.execute(delete(table).where(table.integration_id == row.id))
        await session.execute(delete(Integration).where(Integration.id == row.id))
    forget_providers(ctx.services)
    return DeletedIntegration(slug=row.slug)
