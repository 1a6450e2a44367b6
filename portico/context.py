"""Who is calling, and with what: the principal behind an API key, and the services a handler may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.errors import PermissionDenied
from portico.settings import Settings
from portico.ttl_cache import TtlCache

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from portico.blob.base import BlobStore
    from portico.request_log import RequestLogWriter
    from providers.http import UpstreamClient

ProgressReporter = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Principal:
    """An authenticated API key. `workspace_id` is None for organisation keys."""

    api_key_id: str
    organisation_id: str
    workspace_id: str | None
    key_type: str
    scopes: frozenset[str]
    expires_at: int | None = None

    @property
    def is_organisation_key(self) -> bool:
        return self.workspace_id is None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"This API key lacks the '{scope}' scope needed for this operation.", code="missing_scope"
            )


@dataclass
class Services:
    """Process-wide resources, built once at start-up and shared by REST, MCP and workers."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    # Every call Portico makes upstream (providers, custom hosts) goes through this one client.
    upstream: UpstreamClient
    request_log: RequestLogWriter
    redis: Redis | None = None
    # Per-process caches of per-request lookups (API keys, virtual keys), by name; see `cache`.
    _caches: dict[str, TtlCache[Any, Any]] = field(default_factory=dict, repr=False)

    def cache(self, name: str, seconds: float = 5.0) -> TtlCache[Any, Any]:
        """The cache `name` of these services (created on first use). Owned by the services, not the module, so
        two apps in one process (as in tests) never share entries."""
        found = self._caches.get(name)
        if found is None:
            found = self._caches[name] = TtlCache(seconds)
        return found


@dataclass
class CallContext:
    """One operation call: the caller, the workspace its data-plane objects live in, and the services."""

    principal: Principal
    services: Services
    # The workspace data-plane objects are read from and written to. For organisation keys it is chosen by the
    # `x-portico-workspace` header, or the organisation's default workspace.
    workspace_id: str
    # Absolute base of the REST API as the caller reached it, e.g. `http://127.0.0.1:8787/v1`.
    base_url: str = ""
    idempotency_key: str | None = None
    report_progress: ProgressReporter | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.services.settings
