"""Where one attempt goes: a routing leaf (virtual key, or provider + key) resolved to a provider, its secrets and
settings, and a base URL — with whether that URL is operator-trusted or must pass the SSRF guard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from gateway.config_model import Target
from portico.context import CallContext, Services
from portico.db.credentials import VirtualKey
from portico.errors import InvalidRequest, NotFound
from portico.secrets import SecretBox
from portico.ttl_cache import TtlCache
from providers.catalogue import ProviderSpec, provider_spec, supported_names

# Virtual keys are read on every request: a short-lived cache keeps that off the database. A key rotated or
# deleted through another process is picked up within this many seconds (at once in this process).
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class ResolvedTarget:
    spec: ProviderSpec
    secrets: Mapping[str, Any]
    settings: Mapping[str, Any]
    base_url: str
    # False when the URL came from the caller (custom_host): the upstream client must vet it.
    trusted: bool
    virtual_key: str | None = None
    override_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class _Cached:
    row: VirtualKey
    secrets: dict[str, Any]


def _virtual_keys(services: Services) -> TtlCache[tuple[str, str], _Cached]:
    return services.cache("virtual_keys", CACHE_SECONDS)


def forget_virtual_key(services: Services, workspace_id: str, slug: str) -> None:
    _virtual_keys(services).discard((workspace_id, slug))


async def _virtual_key(ctx: CallContext, slug: str) -> _Cached:
    cache_key = (ctx.workspace_id, slug)
    cached = _virtual_keys(ctx.services).get(cache_key)
    if cached is not None:
        return cached
    query = select(VirtualKey).where(VirtualKey.workspace_id == ctx.workspace_id, VirtualKey.slug == slug)
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None or row.status != "active":
        raise NotFound(
            f"No virtual key '{slug}' in this workspace.", param="x-portkey-virtual-key", code="unknown_virtual_key"
        )
    fresh = _Cached(row=row, secrets=SecretBox.from_settings(ctx.settings).open(row.sealed_secrets))
    _virtual_keys(ctx.services).put(cache_key, fresh)
    return fresh


def _spec(name: str, param: str) -> ProviderSpec:
    spec = provider_spec(name)
    if spec is None:
        raise InvalidRequest(
            f"Unknown provider '{name}'; supported: {', '.join(supported_names())}.",
            param=param,
            code="unsupported_provider",
        )
    return spec


def _base_url(ctx: CallContext, spec: ProviderSpec, custom_host: str | None) -> tuple[str, bool]:
    if custom_host:
        return custom_host.rstrip("/"), False
    endpoint = ctx.settings.provider_endpoints.get(spec.name) or spec.base_url
    return endpoint.rstrip("/"), True


async def resolve(ctx: CallContext, leaf: Target, overrides: Mapping[str, Any]) -> ResolvedTarget:
    if leaf.virtual_key:
        cached = await _virtual_key(ctx, leaf.virtual_key)
        spec = _spec(cached.row.provider, "x-portkey-virtual-key")
        custom = leaf.custom_host or cached.row.model_config_.get("customHost")
        base_url, trusted = _base_url(ctx, spec, custom)
        return ResolvedTarget(
            spec, cached.secrets, cached.row.model_config_, base_url, trusted, leaf.virtual_key, overrides
        )
    assert leaf.provider is not None  # a leaf has a virtual key or a provider (config_model validates it)
    spec = _spec(leaf.provider, "x-portkey-provider")
    base_url, trusted = _base_url(ctx, spec, leaf.custom_host)
    secrets = {"key": leaf.api_key} if leaf.api_key else {}
    return ResolvedTarget(spec, secrets, {}, base_url, trusted, None, overrides)
