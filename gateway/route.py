"""How a request names its provider: Portkey's routing headers (or, over MCP, the same as tool arguments)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.config_model import Target, parse_config
from portico.context import CallContext
from portico.db.credentials import RoutingConfig, RoutingConfigVersion
from portico.errors import InvalidRequest, NotFound

CONFIG_HEADER = "x-portkey-config"


class Route(BaseModel):
    """The routing inputs of one request. Over REST they are headers; over MCP, tool arguments."""

    virtual_key: str | None = Field(None, description="A virtual key slug (x-portkey-virtual-key).")
    config: str | None = Field(None, description="A config slug or inline JSON (x-portkey-config).")
    provider: str | None = Field(
        None, description="A provider name with provider_key, or '@slug' for a workspace provider (x-portkey-provider)."
    )
    provider_key: str | None = Field(None, description="The provider's API key, with provider.")
    custom_host: str | None = Field(None, description="An OpenAI-compatible base URL (x-portkey-custom-host).")

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Route:
        # Authorization carries the provider's key only when the Portico key came in x-portkey-api-key.
        provider_key = None
        if headers.get("x-portkey-api-key"):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            provider_key = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        return cls(
            virtual_key=headers.get("x-portkey-virtual-key") or None,
            config=headers.get(CONFIG_HEADER) or None,
            provider=headers.get("x-portkey-provider") or None,
            provider_key=provider_key,
            custom_host=headers.get("x-portkey-custom-host") or None,
        )


async def plan_for(ctx: CallContext, route: Route) -> Target:
    """The routing tree for this request: a config, or a single target from the other inputs."""
    if route.config:
        return await _config(ctx, route.config)
    if route.virtual_key:
        return Target(virtual_key=route.virtual_key, custom_host=route.custom_host)
    if route.provider:
        return Target(provider=route.provider, api_key=route.provider_key, custom_host=route.custom_host)
    if route.custom_host:
        return Target(provider="openai-compatible", api_key=route.provider_key, custom_host=route.custom_host)
    raise InvalidRequest(
        "No provider selected: send x-portkey-virtual-key, x-portkey-config, or x-portkey-provider with the "
        "provider's key in Authorization (and your Portico key in x-portkey-api-key); over MCP, the 'route' "
        "argument (or portkey_options for batches).",
        param="x-portkey-virtual-key",
        code="missing_provider",
    )


async def _config(ctx: CallContext, value: str) -> Target:
    if value.lstrip().startswith("{"):
        return parse_config(value, param=CONFIG_HEADER)
    query = (
        select(RoutingConfigVersion.body)
        .join(RoutingConfig, RoutingConfig.current_version_id == RoutingConfigVersion.version_id)
        .where(RoutingConfig.workspace_id == ctx.workspace_id, RoutingConfig.slug == value)
    )
    async with ctx.services.sessions() as session:
        body = (await session.execute(query)).scalar_one_or_none()
    if body is None:
        raise NotFound(f"No config '{value}' in this workspace.", param=CONFIG_HEADER, code="unknown_config")
    return parse_config(body, param=CONFIG_HEADER)
