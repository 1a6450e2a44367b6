"""MCP over stdio for desktop clients: no HTTP request carries a key, so the principal comes from settings."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import Context

from control_plane.bootstrap import bootstrap
from mcp_server.server import build_mcp_server
from portico.auth import authenticate
from portico.catalogue import load_registry
from portico.context import Principal
from portico.errors import AuthenticationFailed
from portico.services import close_services, open_services
from portico.settings import Settings


async def serve_stdio(settings: Settings) -> None:
    assert settings.api_key is not None
    services = await open_services(settings)
    try:
        generated = await bootstrap(services)
        if generated:
            # stdout carries the protocol: the one-time key goes to stderr.
            print(f"Organisation admin API key (shown once, store it now): {generated}", file=sys.stderr)
        try:
            principal = await authenticate(services, {"x-portkey-api-key": settings.api_key.get_secret_value()})
        except AuthenticationFailed as error:
            sys.exit(f"portico mcp-stdio: PORTICO_API_KEY is not usable with {settings.data_dir}: {error.message}")

        def configured_principal(_: Context) -> Principal:
            return principal

        mcp = build_mcp_server(load_registry(), services, configured_principal)
        await mcp.run_stdio_async()
    finally:
        await close_services(services)
