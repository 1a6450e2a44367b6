"""The ASGI application: REST under `/v1`, MCP at `/mcp`, `/health`; all from one registry and one `Services`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_server.calls import principal_from_request
from mcp_server.http import McpEndpoint, transport_security
from mcp_server.server import build_mcp_server
from portico.catalogue import load_registry
from portico.context import Services
from portico.errors import NotFound, PorticoError
from rest_api.health import health_route
from rest_api.routes import build_routes, error_response
from rest_api.uploads import upload_route

log = logging.getLogger(__name__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"No route {request.method} {request.url.path}.", code="unknown_url"))
    body = PorticoError(str(exc.detail))
    return JSONResponse(body.to_body(), status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(PorticoError("Internal error; it has been logged.", code="internal_error"))


def create_app(services: Services) -> Starlette:
    """Build the app on opened services; the caller owns them (and closes them after the app stops)."""
    registry = load_registry()
    mcp = build_mcp_server(registry, services, principal_from_request)
    security = transport_security(services)
    mcp.streamable_http_app(transport_security=security)  # creates the session manager McpEndpoint drives

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    routes: list[BaseRoute] = [
        *build_routes(registry, services),
        Route("/mcp", McpEndpoint(mcp, services, security), methods=["GET", "POST", "DELETE"]),
        health_route(services),
        upload_route(services),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
