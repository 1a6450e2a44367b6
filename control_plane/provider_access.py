"""What `x-portkey-provider: @<slug>` means in a workspace (Portkey's "@provider" convention): the provider of that
slug there, the sealed credentials of the integration behind it, and the models that integration allows.

The gateway looks providers up on every such request, so results are cached for a few seconds; any change to a
provider, an integration, its models or its workspace grants drops the cache at once in this process, and other
processes see the change within `CACHE_SECONDS`. Expiry and access are checked on every call, not cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from control_plane.integration_access import usable_by
from portico.context import CallContext, Services
from portico.db.integrations import Integration, IntegrationModel, Provider
from portico.errors import PermissionDenied
from portico.ids import now
from portico.secrets import SecretBox
from portico.ttl_cache import TtlCache

PREFIX = "@"
HEADER = "x-portkey-provider"
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class ProviderAccess:
    slug: str
    integration_slug: str
    # The catalogue's provider name ('openai', 'bedrock', …): what the gateway's adapter lookup takes.
    provider: str
    # Under the catalogue's field names, exactly as a virtual key's.
    secrets: Mapping[str, Any]
    settings: Mapping[str, Any]
    allow_all_models: bool
    # Per-model switches; a model without one follows `allow_all_models`.
    models: Mapping[str, bool]
    usable: bool
    expires_at: int | None

    def allows(self, model: str) -> bool:
        return self.models.get(model, self.allow_all_models)

    def check_model(self, model: str | None) -> None:
        """Refuse a model the integration does not allow (PUT /integrations/{slug}/models)."""
        if model is not None and not self.allows(model):
            raise PermissionDenied(
                f"Model '{model}' is not enabled on integration '{self.integration_slug}' behind provider "
                f"'{PREFIX}{self.slug}'.",
                param="model",
                code="model_not_allowed",
            )


@dataclass(frozen=True)
class _Lookup:
    found: ProviderAccess | None


def provider_slug(value: str | None) -> str | None:
    """`@openai-prod` → `openai-prod`; None for anything else (a plain provider name such as `openai`)."""
    if value and value.startswith(PREFIX) and len(value) > len(PREFIX):
        return value[len(PREFIX) :]
    return None


def split_model(model: str) -> tuple[str, str] | None:
    """Portkey's model-catalogue form `@openai-prod/gpt-4o` → (`openai-prod`, `gpt-4o`); None for a plain model."""
    slug = provider_slug(model)
    if slug is None or "/" not in slug:
        return None
    provider, _, name = slug.partition("/")
    return (provider, name) if provider and name else None


def _cache(services: Services) -> TtlCache[tuple[str, str], _Lookup]:
    return services.cache("providers", CACHE_SECONDS)


def forget_providers(services: Services) -> None:
    """After any provider or integration change; rare enough that dropping every entry beats finer bookkeeping."""
    _cache(services).clear()


async def _looked_up(ctx: CallContext, slug: str) -> _Lookup:
    return _Lookup(await _load(ctx, slug))


async def _load(ctx: CallContext, slug: str) -> ProviderAccess | None:
    query = (
        select(Provider, Integration, usable_by(ctx.workspace_id).label("usable"))
        .join(Integration, Integration.id == Provider.integration_id)
        .where(Provider.workspace_id == ctx.workspace_id, Provider.slug == slug)
    )
    async with ctx.services.sessions() as session:
        found = (await session.execute(query)).one_or_none()
        if found is None:
            return None
        provider, integration, usable = found
        switches = select(IntegrationModel.slug, IntegrationModel.enabled).where(
            IntegrationModel.integration_id == integration.id
        )
        models = {name: enabled for name, enabled in (await session.execute(switches)).all()}
    return ProviderAccess(
        slug=provider.slug,
        integration_slug=integration.slug,
        provider=integration.ai_provider_id,
        secrets=SecretBox.from_settings(ctx.settings).open(integration.sealed_secrets),
        settings=integration.settings,
        allow_all_models=integration.allow_all_models,
        models=models,
        usable=bool(usable),
        expires_at=provider.expires_at,
    )


async def find_provider(ctx: CallContext, slug: str) -> ProviderAccess | None:
    """The provider `slug` of the calling workspace, or None when it has none by that name. A provider that has
    expired, or whose workspace lost access to its integration, is refused (403) rather than treated as absent."""
    lookup = await _cache(ctx.services).get_or_load((ctx.workspace_id, slug), lambda: _looked_up(ctx, slug))
    access = lookup.found
    if access is None:
        return None
    if access.expires_at is not None and access.expires_at <= now():
        raise PermissionDenied(f"Provider '{PREFIX}{slug}' has expired.", param=HEADER, code="provider_expired")
    if not access.usable:
        raise PermissionDenied(
            f"This workspace no longer has access to integration '{access.integration_slug}' behind provider "
            f"'{PREFIX}{slug}'.",
            param=HEADER,
            code="integration_access_revoked",
        )
    return access
