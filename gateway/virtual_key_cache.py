"""The per-process cache of resolved virtual keys, apart from `gateway.targets` so that the control plane can
invalidate it (on update or delete) without importing the gateway's routing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portico.context import Services
from portico.db.credentials import VirtualKey
from portico.ttl_cache import TtlCache

# Virtual keys are read on every request: a short-lived cache keeps that off the database. A key rotated or
# deleted through another process is picked up within this many seconds (at once in this process).
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class CachedVirtualKey:
    row: VirtualKey
    secrets: dict[str, Any]


def virtual_key_cache(services: Services) -> TtlCache[tuple[str, str], CachedVirtualKey]:
    return services.cache("virtual_keys", CACHE_SECONDS)


def forget_virtual_key(services: Services, workspace_id: str, slug: str) -> None:
    virtual_key_cache(services).discard((workspace_id, slug))
