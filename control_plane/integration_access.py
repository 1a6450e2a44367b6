"""Who reaches which integration, shared by the integration, model, workspace and provider operations.

Integrations belong to the organisation, so only organisation keys change them. A workspace may use an integration
scoped to it, one granted to it, or one open to every workspace (global access) that was not refused to it; a
workspace key sees only those, read-only, and any other slug answers 404 as if it did not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.virtual_keys import acting_workspace
from portico.context import CallContext
from portico.db.integrations import Integration, IntegrationWorkspace
from portico.errors import Conflict, InvalidRequest, NotFound, PermissionDenied

SLUG_PATTERN = r"^[a-zA-Z0-9_-]+$"


def require_organisation_key(ctx: CallContext, action: str) -> None:
    if not ctx.principal.is_organisation_key:
        raise PermissionDenied(
            f"Integrations belong to the organisation: {action} needs an organisation API key.",
            code="organisation_key_required",
        )


async def named_workspace(ctx: CallContext, requested: str | None) -> str:
    """The workspace a call acts in (see `acting_workspace`), an unknown one named as the `workspace_id` argument."""
    try:
        return await acting_workspace(ctx, requested)
    except NotFound as error:
        raise NotFound(error.message, param="workspace_id", code="not_found") from None


def usable_by(workspace_id: str) -> ColumnElement[bool]:
    """Whether an integration row may be used in `workspace_id`, as a SQL condition (for lists and lookups alike)."""
    grant = IntegrationWorkspace
    granted = exists().where(
        grant.integration_id == Integration.id, grant.workspace_id == workspace_id, grant.enabled.is_(True)
    )
    decided = exists().where(grant.integration_id == Integration.id, grant.workspace_id == workspace_id)
    return and_(
        Integration.status == "active",
        or_(
            Integration.workspace_id == workspace_id,
            and_(Integration.workspace_id.is_(None), or_(granted, and_(~decided, Integration.global_access.is_(True)))),
        ),
    )


async def load_integration(ctx: CallContext, slug: str, admin_action: str | None = None) -> Integration:
    """The caller's integration `slug`. `admin_action` names what the caller is doing when only organisation keys
    may do it (every change, and reading which workspaces have access)."""
    if admin_action is not None:
        require_organisation_key(ctx, admin_action)
    query = select(Integration).where(
        Integration.organisation_id == ctx.principal.organisation_id, Integration.slug == slug
    )
    if ctx.principal.workspace_id is not None:
        query = query.where(usable_by(ctx.principal.workspace_id))
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No integration '{slug}' in this organisation.", param="slug", code="not_found")
    return row


def not_workspace_scoped(row: Integration, param: str) -> None:
    if row.workspace_id is not None:
        raise InvalidRequest(
            f"Integration '{row.slug}' is scoped to workspace '{row.workspace_id}'; only organisation-level "
            "integrations are shared with other workspaces.",
            param=param,
            code="workspace_scoped_integration",
        )


@asynccontextmanager
async def writing(ctx: CallContext, taken: str, param: str) -> AsyncIterator[AsyncSession]:
    """One transaction; a unique slug claimed concurrently by another writer becomes a 409 naming `param`."""
    try:
        async with ctx.services.sessions() as session, session.begin():
            yield session
    except IntegrityError:
        raise Conflict(taken, param=param, code="slug_taken") from None
