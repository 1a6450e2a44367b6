"""Resource subscriptions in both protocol eras, each URI granted only to a caller who may read it.

- 2026-07-28: `subscriptions/listen` is the SDK's handler over our bus (`mcp_server.updates`); it is wrapped so
  every requested resource URI is first read as the caller (an unknown or foreign id fails the request as a read
  would, `-32602` not found), and the stream's listener is tagged with the caller's workspace.
- 2025-11-25: `MCPServer` does not serve `resources/subscribe`, so it and `resources/unsubscribe` are added to its
  low-level server. A session's subscriptions live on its connection, whose updates ride the session's standalone
  GET stream; they end with the connection (DELETE, idle timeout, crash) through its exit stack. Only stateful
  sessions have that stream: without one a subscription could never deliver, so it is refused.

Authorising by reading keeps one definition of "may see this object": the resource templates run the registry's
retrieve operations, whose workspace checks are the REST API's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.subscriptions import ResourceUpdated, ServerEvent
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    UnsubscribeRequestParams,
)

from mcp_server.calls import PrincipalSource, call_context, tool_error
from mcp_server.updates import LISTENING_WORKSPACE, JobUpdated, JobUpdates
from portico.context import Services
from portico.errors import PorticoError

SESSION_STATE_KEY = "portico.subscriptions"
# Each URI is read to authorise it: bound the reads one listen request can cause.
MAX_URIS_PER_STREAM = 100


class Subscriptions:
    """Installs the subscription methods on one MCP server; `authorize` is shared by both eras."""

    def __init__(self, mcp: MCPServer[Any], services: Services, principal_of: PrincipalSource, hub: JobUpdates):
        self._mcp = mcp
        self._services = services
        self._principal_of = principal_of
        self._hub = hub

    def install(self) -> None:
        # `MCPServer` keeps its low-level server private and has no public way to add a request handler; TESTING.md
        # ("MCP SDK 2.x") records this as the way to serve the 2025 subscribe methods.
        lowlevel = self._mcp._lowlevel_server
        listen = lowlevel.get_request_handler("subscriptions/listen")
        assert listen is not None, "MCPServer serves subscriptions/listen unless built with subscriptions=False"
        sdk_listen = listen.handler

        async def authorized_listen(
            ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
        ) -> HandlerResult:
            uris = params.notifications.resource_subscriptions or []
            if len(uris) > MAX_URIS_PER_STREAM:
                raise MCPError(code=INVALID_PARAMS, message=f"At most {MAX_URIS_PER_STREAM} resources per stream.")
            workspaces = {await self.authorize(ctx, uri) for uri in uris}
            token = LISTENING_WORKSPACE.set(workspaces.pop() if len(workspaces) == 1 else None)
            try:
                with self._hub.watching(uris):
                    result: HandlerResult = await sdk_listen(ctx, params)
                    return result
            finally:
                LISTENING_WORKSPACE.reset(token)

        lowlevel.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, authorized_listen)
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    async def authorize(self, ctx: ServerRequestContext[Any, Any], uri: str) -> str:
        """Read `uri` as the caller; returns the workspace it was read in. Fails as `resources/read` would."""
        context: Context[Any, Any] = Context(request_context=ctx, mcp_server=self._mcp)
        try:
            await self._mcp.read_resource(uri, context)
            return (await call_context(self._services, self._principal_of, context)).workspace_id
        except ResourceError as error:
            code = INVALID_PARAMS if isinstance(error, ResourceNotFoundError) else INTERNAL_ERROR
            raise MCPError(code=code, message=f"Cannot subscribe to {uri}: {error}", data={"uri": uri}) from error
        except PorticoError as error:
            raise MCPError(code=INVALID_REQUEST, message=str(tool_error(error)), data={"uri": uri}) from error

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        connection = _connection(ctx)
        if connection is None or not connection.has_standalone_channel:
            raise MCPError(
                code=INVALID_REQUEST,
                message="resources/subscribe needs a stateful session: its updates ride the session's GET stream.",
            )
        workspace_id = await self.authorize(ctx, str(params.uri))
        SessionSubscriptions.of(connection, self._hub).add(str(params.uri), workspace_id)
        return EmptyResult()

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        connection = _connection(ctx)
        found = connection.state.get(SESSION_STATE_KEY) if connection is not None else None
        if isinstance(found, SessionSubscriptions):
            found.discard(str(params.uri))
        return EmptyResult()


def _connection(ctx: ServerRequestContext[Any, Any]) -> Connection | None:
    # A low-level handler is given the per-request `ServerSession`, which keeps its connection private; the
    # connection's `state` and `exit_stack` are the SDK's documented home for per-connection state and teardown.
    connection = getattr(ctx.session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


class SessionSubscriptions:
    """One 2025-era session's subscribed URIs (each with the workspace it was granted in), and the task pushing
    their updates down the session's GET stream, so the bus's reader never waits on a client."""

    def __init__(self, connection: Connection, hub: JobUpdates) -> None:
        self._connection = connection
        self._hub = hub
        self._granted: dict[str, str] = {}
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._unsubscribe = hub.subscribe_for(self._on_event, None)
        self._pusher = asyncio.create_task(self._push(), name="portico-mcp-session-updates")

    @classmethod
    def of(cls, connection: Connection, hub: JobUpdates) -> SessionSubscriptions:
        found = connection.state.get(SESSION_STATE_KEY)
        if isinstance(found, SessionSubscriptions):
            return found
        created = connection.state[SESSION_STATE_KEY] = cls(connection, hub)
        connection.exit_stack.push_async_callback(created.close)
        return created

    def add(self, uri: str, workspace_id: str) -> None:
        if uri not in self._granted:
            self._hub.hold([uri])
        self._granted[uri] = workspace_id

    def discard(self, uri: str) -> None:
        self._pending.pop(uri, None)
        if self._granted.pop(uri, None) is not None:
            self._hub.release([uri])

    def _on_event(self, event: ServerEvent) -> None:
        if not isinstance(event, ResourceUpdated) or event.uri not in self._granted:
            return
        if isinstance(event, JobUpdated) and event.workspace_id not in (None, self._granted[event.uri]):
            return
        self._pending[event.uri] = None
        self._wake.set()

    async def _push(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                uri = next(iter(self._pending))
                del self._pending[uri]
                await self._connection.send_resource_updated(uri)

    async def close(self) -> None:
        self._unsubscribe()
        for uri in list(self._granted):
            self.discard(uri)
        self._pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pusher
