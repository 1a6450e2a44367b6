"""Where one attempt goes: a routing leaf (virtual key, or provider + key) resolved to a provider, its secrets and
settings, and a base URL — with whether that URL is operator-trusted or must pass the SSRF guard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from control_plane.provider_access import ProviderAccess, find_provider, provider_slug
from gateway.config_model import Target
from gateway.virtual_key_cache import CachedVirtualKey, virtual_key_cache
from portico.context import CallContext
from portico.db.credentials import VirtualKey
from portico.errors import InvalidRequest, NotFound
from portico.secrets import SecretBox
from providers.catalogue import ProviderSpec, provider_spec, supported_names


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
    # Set when the target is a workspace provider (`@slug`): its integration's model allow-list applies.
    provider_access: ProviderAccess | None = None

    @property
    def provider(self) -> str:
        return self.spec.name


async def _virtual_key(ctx: CallContext, slug: str) -> CachedVirtualKey:
    return await virtual_key_cache(ctx.services).get_or_load((ctx.workspace_id, slug), lambda: _load(ctx, slug))


async def _load(ctx: CallContext, slug: str) -> CachedVirtualKey:
    query = select(VirtualKey).where(VirtualKey.workspace_id == ctx.workspace_id, VirtualKey.slug == slug)
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None or row.status != "active":
        raise NotFound(
            f"No virtual key '{slug}' in this workspace.", param="x-portkey-virtual-key", code="unknown_virtual_key"
        )
    return CachedVirtualKey(row=row, secrets=SecretBox.from_settings(ctx.settings).open(row.sealed_secrets))


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
    slug = provider_slug(leaf.provider)
    if slug is not None:
        return await _workspace_provider(ctx, leaf, slug, overrides)
    spec = _spec(leaf.provider, "x-portkey-provider")
    base_url, trusted = _base_url(ctx, spec, leaf.custom_host)
    secrets = {"key": leaf.api_key} if leaf.api_key else {}
    return ResolvedTarget(spec, secrets, {}, base_url, trusted, None, overrides)


async def _workspace_provider(
    ctx: CallContext, leaf: Target, slug: str, overrides: Mapping[str, Any]
) -> ResolvedTarget:
    """`@slug`: a workspace provider backed by an integration, or else (Portkey uses `@` for both) a virtual key."""
    access = await find_provider(ctx, slug)
    if access is None:
        return await resolve(ctx, leaf.model_copy(update={"provider": None, "virtual_key": slug}), overrides)
    spec = _spec(access.provider, "x-portkey-provider")
    base_url, trusted = _base_url(ctx, spec, leaf.custom_host or access.settings.get("customHost"))
    return ResolvedTarget(
        spec, access.secrets, access.settings, base_url, trusted, leaf.provider, overrides, provider_access=access
    )
