"""API-key authentication, and which workspace a call acts in.

The key travels in `x-portkey-api-key`; when that header is absent, `Authorization: Bearer <key>` is read instead.
When both are present, `Authorization` belongs to the upstream provider (as in Portkey) and is not ours to read.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from portico.context import Principal, Services
from portico.db.models import ApiKey, Workspace
from portico.errors import AuthenticationFailed, NotFound
from portico.ids import hash_secret, now
from portico.ttl_cache import TtlCache

WORKSPACE_HEADER = "x-portico-workspace"
# Keys are looked up on every request; a key revoked through another process stops working within this many
# seconds (at once in the process that revoked it).
CACHE_SECONDS = 5.0


def _principals(services: Services) -> TtlCache[str, Principal]:
    return services.cache("principals", CACHE_SECONDS)


def _workspaces(services: Services) -> TtlCache[tuple[str, str | None], str]:
    return services.cache("workspace_ids", CACHE_SECONDS)


def forget_key(services: Services, key_hash: str) -> None:
    _principals(services).discard(key_hash)


def forget_workspaces(services: Services) -> None:
    """After a workspace is deleted: drop every cached workspace resolution (rare, so no finer bookkeeping)."""
    _workspaces(services).clear()


def presented_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-portkey-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(services: Services, headers: Mapping[str, str]) -> Principal:
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed(
            "No API key: send it in the 'x-portkey-api-key' header or as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    key_hash = hash_secret(key)
    principal = await _principals(services).get_or_load(key_hash, lambda: _load_principal(services, key_hash))
    if principal.expires_at is not None and principal.expires_at <= now():
        raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
    return principal


async def _load_principal(services: Services, key_hash: str) -> Principal:
    async with services.sessions() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))).scalar_one_or_none()
    if row is None or row.status != "active":
        raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    return Principal(
        api_key_id=row.id,
        organisation_id=row.organisation_id,
        workspace_id=row.workspace_id,
        key_type=row.key_type,
        scopes=frozenset(row.scopes),
        expires_at=row.expires_at,
    )


async def resolve_workspace(services: Services, principal: Principal, requested: str | None) -> str:
    """The workspace a data-plane call acts in: a workspace key's own; for an organisation key the one named in the
    `x-portico-workspace` header (id or slug) or else the organisation's default workspace."""
    if principal.workspace_id is not None:
        return principal.workspace_id
    cache_key = (principal.organisation_id, requested)
    return await _workspaces(services).get_or_load(cache_key, lambda: _load_workspace(services, principal, requested))


async def _load_workspace(services: Services, principal: Principal, requested: str | None) -> str:
    query = select(Workspace.id).where(Workspace.organisation_id == principal.organisation_id)
    if requested:
        query = query.where((Workspace.id == requested) | (Workspace.slug == requested))
    else:
        query = query.where(Workspace.is_default.is_(True))
    async with services.sessions() as session:
        workspace_id = (await session.execute(query)).scalar_one_or_none()
    if workspace_id is None:
        raise NotFound(f"No workspace '{requested}' in this organisation.", param=WORKSPACE_HEADER)
    return str(workspace_id)
