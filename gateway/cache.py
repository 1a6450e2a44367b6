"""The simple response cache: a config's `cache: {"mode": "simple", "max_age": N}` turns it on.

Entries live in Redis, keyed by workspace, operation, the exact request body and `x-portkey-cache-namespace`, so
workspaces never share answers. `x-portkey-cache-force-refresh: true` skips the lookup and stores the fresh answer.
Streamed requests are not cached. Without Redis the cache is off (the request log says DISABLED).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway.config_model import Target
from portico.context import Services

DEFAULT_MAX_AGE = 24 * 3600
PREFIX = "portico:cache:"


class CacheHeaders(BaseModel):
    namespace: str | None = None
    force_refresh: bool = False

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> CacheHeaders:
        refresh = headers.get("x-portkey-cache-force-refresh", "").strip().lower() in ("true", "1", "yes")
        return cls(namespace=headers.get("x-portkey-cache-namespace") or None, force_refresh=refresh)


@dataclass(frozen=True)
class CachePolicy:
    key: str
    max_age: int
    force_refresh: bool


def policy_for(
    plan: Target, services: Services, workspace_id: str, operation: str, body: dict[str, Any], headers: CacheHeaders
) -> CachePolicy | None:
    if plan.cache is None or plan.cache.mode != "simple" or services.redis is None:
        return None
    canonical = json.dumps([workspace_id, operation, headers.namespace, body], sort_keys=True, separators=(",", ":"))
    key = PREFIX + hashlib.sha256(canonical.encode()).hexdigest()
    return CachePolicy(key, plan.cache.max_age or DEFAULT_MAX_AGE, headers.force_refresh)


async def lookup(services: Services, policy: CachePolicy) -> dict[str, Any] | None:
    if policy.force_refresh or services.redis is None:
        return None
    raw = await services.redis.get(policy.key)
    if raw is None:
        return None
    cached: dict[str, Any] = json.loads(raw)
    return cached


async def store(services: Services, policy: CachePolicy, value: dict[str, Any]) -> None:
    if services.redis is not None:
        await services.redis.set(policy.key, json.dumps(value, separators=(",", ":")), ex=policy.max_age)
