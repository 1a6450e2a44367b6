"""MCP over stdio for desktop clients: no HTTP request carries a key, so the principal comes from settings."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from mcp_server.server import build_mcp_server
from portico.auth import authenticate
from portico.catalogue import load_registry
from portico.context import Principal
from portico.services import close_services, open_services
from portico.settings import Settings


async def serve_stdio(settings: Settings) -> None:
    assert settings.api_key is not None
    services = await open_services(settings)
    try:
        principal = await authenticate(services, {"x-portkey-api-key": settings.api_key.get_secret_value()})

        def configured_principal(_: Context) -> Principal:
            return principal

        mcp = build_mcp_server(load_registry(), services, configured_principal)
        await mcp.run_stdio_async()
    finally:
        await close_services(services)
