"""WebSocket routes for registry operations declared with `websocket=True` (GET /v1/realtime).

Browsers cannot set headers on a WebSocket, so besides the usual headers the key may come as the subprotocol
`openai-insecure-api-key.<key>`, as OpenAI's own realtime clients send it. A refused handshake closes with 1008
(policy violation) and a reason an agent can act on, before the socket is accepted.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from portico.auth import WORKSPACE_HEADER, authenticate
from portico.context import Services
from portico.dispatch import build_context, invoke
from portico.errors import PorticoError
from portico.registry import Operation
from portico.websocket_call import WebSocketCall

log = logging.getLogger(__name__)

KEY_SUBPROTOCOL = "openai-insecure-api-key."
POLICY_VIOLATION = 1008


def _credentials(headers: dict[str, str], subprotocols: list[str]) -> dict[str, str]:
    offered = [p[len(KEY_SUBPROTOCOL) :] for p in subprotocols if p.startswith(KEY_SUBPROTOCOL)]
    if offered and not headers.get("x-portkey-api-key") and not headers.get("authorization"):
        return {**headers, "x-portkey-api-key": offered[0]}
    return headers


async def refuse(socket: WebSocket, error: PorticoError) -> None:
    """Answer the handshake with the error's HTTP status and OpenAI-shaped body where the server supports it (the
    ASGI denial-response extension); otherwise close with 1008 and the message as the reason."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(JSONResponse(error.to_body(), status_code=error.status))
    else:
        await socket.close(code=POLICY_VIOLATION, reason=error.message[:120])


def websocket_route(prefix: str, operation: Operation, services: Services) -> WebSocketRoute:
    async def endpoint(socket: WebSocket) -> None:
        headers = dict(socket.headers)
        subprotocols = list(socket.scope.get("subprotocols", []))
        try:
            principal = await authenticate(services, _credentials(headers, subprotocols))
            ctx = await build_context(services, principal, workspace_header=headers.get(WORKSPACE_HEADER))
            call: Any = WebSocketCall(socket, dict(socket.query_params), headers, subprotocols)
            await invoke(operation, ctx, call)
        except PorticoError as error:
            log.info("websocket %s refused: %s", socket.url.path, error.message)
            if socket.client_state.name == "CONNECTING":
                await refuse(socket, error)

    return WebSocketRoute(prefix + (operation.rest_path or ""), endpoint, name=operation.name)
