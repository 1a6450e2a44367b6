"""`/mcp` over streamable HTTP: Origin/Host checks, then API-key auth, then the SDK's transport.

Origin and Host are checked first (a DNS-rebinding defence must not depend on the attacker lacking a key). The
authenticated principal is put on the ASGI scope for the tools, and also as the SDK's `scope["user"]`, which binds a
stateful MCP session to the key that opened it: another key presenting the same session id is refused.
"""

from __future__ import annotations

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from mcp_server.calls import PRINCIPAL_SCOPE_KEY
from portico.auth import authenticate
from portico.context import Services
from portico.errors import AuthenticationFailed

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def transport_security(services: Services) -> TransportSecuritySettings:
    hosts = [*LOOPBACK_HOSTS, *services.settings.allowed_hosts]
    origins = [f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS]
    origins += services.settings.allowed_origins
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts + [f"{h}:*" for h in hosts],
        allowed_origins=origins + [f"{o}:*" for o in origins],
    )


def _allowed(value: str, allowed: list[str]) -> bool:
    return value in allowed or any(a.endswith(":*") and value.startswith(a[:-1]) for a in allowed)


def _error(status: int, message: str, error_type: str, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers or None)


class McpEndpoint:
    """The ASGI endpoint mounted as `Route("/mcp")` beside the REST routes (a Mount would add a 307 per call)."""

    def __init__(self, mcp: MCPServer, services: Services, security: TransportSecuritySettings) -> None:
        self._transport = StreamableHTTPASGIApp(mcp.session_manager)
        self._services = services
        self._security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        origin = request.headers.get("origin")
        if origin and not _allowed(origin, self._security.allowed_origins):
            await _error(403, f"Origin '{origin}' is not allowed.", "permission_error")(scope, receive, send)
            return
        host = request.headers.get("host", "")
        if not _allowed(host, self._security.allowed_hosts):
            await _error(421, f"Host '{host}' is not allowed.", "permission_error")(scope, receive, send)
            return
        try:
            principal = await authenticate(self._services, request.headers)
        except AuthenticationFailed as error:
            # RFC 6750 §3.1: no error code in the challenge when no credentials were presented.
            presented = error.code != "missing_api_key"
            challenge = 'Bearer realm="portico"' + (', error="invalid_token"' if presented else "")
            await _error(401, error.message, error.error_type, **{"www-authenticate": challenge})(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        token = AccessToken(token=principal.api_key_id, client_id=principal.api_key_id, scopes=sorted(principal.scopes))
        scope["user"] = AuthenticatedUser(token)
        await self._transport(scope, receive, send)
