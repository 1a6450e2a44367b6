"""`GET /v1/realtime`: a WebSocket proxy to an OpenAI-compatible realtime upstream, chosen like any request.

The upstream is connected first (through the routing config, so a refused handshake can fall back to the next
target), then the client's socket is accepted, then frames are relayed both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlencode

import aiohttp
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.executor import execute
from gateway.observe import Observation, Trace
from gateway.route import Route, plan_for
from gateway.targets import ResolvedTarget
from portico.context import CallContext
from portico.errors import InvalidRequest
from portico.registry import operation
from portico.websocket_call import WebSocketCall
from providers.adapters.base import require
from providers.adapters.openai import endpoint
from providers.adapters.registry import adapter_for

log = logging.getLogger(__name__)

DATA_SCOPE = "completions.write"
REALTIME_SUBPROTOCOL = "realtime"
# Browsers cannot set headers on a WebSocket: the route may come in the query string instead (not forwarded).
ROUTE_PARAMS = ("virtual_key", "config")


def route_of(call: WebSocketCall) -> Route:
    route = Route.from_headers(call.headers)
    updates = {name: call.query[name] for name in ROUTE_PARAMS if call.query.get(name) and not getattr(route, name)}
    return route.model_copy(update=updates)


async def _client_to_upstream(client: WebSocket, upstream: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await client.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await upstream.send_str(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send_bytes(message["bytes"])


async def _upstream_to_client(upstream: aiohttp.ClientWebSocketResponse, client: WebSocket) -> None:
    async for message in upstream:
        if message.type == aiohttp.WSMsgType.TEXT:
            await client.send_text(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await client.send_bytes(message.data)
        else:
            return


async def relay(client: WebSocket, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy frames both ways; when one direction ends, stop the other and close both sockets."""
    tasks = [
        asyncio.create_task(_client_to_upstream(client, upstream)),
        asyncio.create_task(_upstream_to_client(upstream, client)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        # The client may have gone already: closing it then is not an error.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await client.close()


@operation(
    name="realtime",
    summary="Open a realtime WebSocket session with a model, proxied to the provider chosen by the route.",
    toolset="inference",
    input_model=Route,
    output_model=None,
    scope=DATA_SCOPE,
    method="GET",
    path="/realtime",
    mcp=False,
    websocket=True,
)
async def realtime(ctx: CallContext, call: WebSocketCall) -> None:
    model = call.query.get("model")
    if not model:
        raise InvalidRequest("The realtime URL needs ?model=<model>.", param="model")
    observation = Observation("realtime", Trace.from_headers(call.headers), model)
    async with AsyncExitStack() as stack:

        async def attempt(target: ResolvedTarget, timeout_s: float | None) -> aiohttp.ClientWebSocketResponse:
            observation.served_by(target)
            require(adapter_for(target.spec), "realtime", target.provider)
            url, headers = endpoint(target, "/realtime")
            query: dict[str, Any] = {k: v for k, v in call.query.items() if k not in ROUTE_PARAMS}
            socket = ctx.services.upstream.websocket(
                f"{url}{'&' if '?' in url else '?'}{urlencode(query)}",
                headers={**headers, "openai-beta": "realtime=v1"},
                timeout=timeout_s,
                trusted=target.trusted,
            )
            return await stack.enter_async_context(socket)

        upstream = await execute(ctx, await plan_for(ctx, route_of(call)), attempt)
        offered = REALTIME_SUBPROTOCOL if REALTIME_SUBPROTOCOL in call.subprotocols else None
        await call.socket.accept(subprotocol=offered)
        log.info("realtime session for %s via %s", model, observation.target.provider if observation.target else "?")
        await relay(call.socket, upstream)
    observation.record(ctx, 101)
