"""Job updates inside one MCP process: the Redis-backed `SubscriptionBus`.

Any process that changes a job (the API, a worker) publishes it on Redis (`portico.bus`). Each process serving MCP
runs one reader, pattern-subscribed to every job channel, which turns each message into a `JobUpdated` event (a
`ResourceUpdated` for the job's URI) and hands it to the local listeners:

- the SDK's `subscriptions/listen` streams (2026-07-28), which filter on the URIs they were granted;
- the 2025-era sessions that called `resources/subscribe` (`mcp_server.subscriptions`);
- running `wait_for_job` calls (`watch`).

One pattern subscription per process, not one channel per watched object: a listen stream registers a single
listener and filters URIs itself, so the bus does not learn which URIs are watched, and one connection with no
subscribe/unsubscribe traffic has no window in which a message for a just-watched object is missed.

Isolation: no URI reaches a listener's filter without the subscriber having read it first (`mcp_server.subscriptions`
checks every URI the way `resources/read` does; a foreign id answers not-found), and ids are global, so a URI names
one object of one workspace. On top of that, a listener registered for a workspace never gets an event that names
another one (publishers may put `workspace_id` in the message).

Events are level triggers ("read it again"), so a lost message costs only freshness: after the reader reconnects,
every URI watched in this process is announced as changed, since what happened meanwhile was not heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.shared.subscriptions import ResourceUpdated, ServerEvent
from redis.exceptions import RedisError

from portico import bus
from portico.context import Services

log = logging.getLogger(__name__)

Listener = Callable[[ServerEvent], None]

# Back-off between attempts to (re)subscribe while Redis is unreachable.
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
STARTUP_WAIT_SECONDS = 5.0

# The workspace a `subscriptions/listen` stream was authorised in. The SDK's listen handler registers its listener
# through `subscribe` synchronously, in the request's own task, so the stream's listener is tagged with the value set
# around that call (`mcp_server.subscriptions`); anything else registering through `subscribe` is untagged.
LISTENING_WORKSPACE: ContextVar[str | None] = ContextVar("portico_listening_workspace", default=None)


@dataclass(frozen=True)
class JobUpdated(ResourceUpdated):
    """A job's resource changed; `workspace_id` when the publisher named the job's workspace."""

    workspace_id: str | None = None


@dataclass(frozen=True)
class _Registration:
    listener: Listener
    workspace_id: str | None

    def accepts(self, event: ServerEvent) -> bool:
        named = event.workspace_id if isinstance(event, JobUpdated) else None
        return named is None or self.workspace_id is None or named == self.workspace_id


class Signal:
    """Updates coalesce into one flag: a waiter re-reads the object once however many arrived meanwhile."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        """Until an update arrives (or already has since the last wait); then re-arms."""
        await self._event.wait()
        self._event.clear()


class JobUpdates:
    """The process's `SubscriptionBus`: Redis job messages in, synchronous fan-out to local listeners."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._listeners: dict[object, _Registration] = {}
        # URIs watched in this process, counted (several streams, sessions and waits may watch one URI).
        self._watched: Counter[str] = Counter()

    async def publish(self, event: ServerEvent) -> None:
        """Events raised inside this process (the SDK's `ctx.notify_*`) reach this process's listeners. Job changes
        cross processes through `portico.bus.publish`, whose messages every process's reader receives."""
        self.deliver(event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self.subscribe_for(listener, LISTENING_WORKSPACE.get())

    def subscribe_for(self, listener: Listener, workspace_id: str | None) -> Callable[[], None]:
        """Register `listener` (synchronous, must not block); with a workspace, events naming another are withheld."""
        token = object()
        self._listeners[token] = _Registration(listener, workspace_id)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def hold(self, uris: Iterable[str]) -> None:
        """Count `uris` as watched in this process, so a reconnect announces them (see the module docstring)."""
        self._watched.update(uris)

    def release(self, uris: Iterable[str]) -> None:
        for uri in uris:
            self._watched[uri] -= 1
            if self._watched[uri] <= 0:
                del self._watched[uri]

    @contextlib.contextmanager
    def watching(self, uris: Iterable[str]) -> Iterator[None]:
        held = list(uris)
        self.hold(held)
        try:
            yield
        finally:
            self.release(held)

    @contextlib.contextmanager
    def watch(self, uri: str) -> Iterator[Signal]:
        """A signal set by every update of `uri` while the block runs (for `wait_for_job`)."""
        signal = Signal()

        def listener(event: ServerEvent) -> None:
            if isinstance(event, ResourceUpdated) and event.uri == uri:
                signal.set()

        unsubscribe = self.subscribe_for(listener, None)
        try:
            with self.watching([uri]):
                yield signal
        finally:
            unsubscribe()

    def deliver(self, event: ServerEvent) -> None:
        for registration in list(self._listeners.values()):
            if not registration.accepts(event):
                continue
            try:
                registration.listener(event)
            except Exception:  # fan-out edge: one faulty listener must not starve the others
                log.exception("job update listener raised; continuing")

    def on_message(self, message: dict[str, Any]) -> None:
        uri = message.get("uri")
        if not isinstance(uri, str):
            return
        workspace_id = message.get("workspace_id")
        self.deliver(JobUpdated(uri=uri, workspace_id=workspace_id if isinstance(workspace_id, str) else None))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Read Redis for the block (the MCP server's lifespan). Start-up waits for the first subscription attempt,
        so no client can subscribe before the reader listens, but not long: an unreachable Redis delays nothing but
        the updates. Without Redis, only in-process events flow."""
        if self._services.redis is None:
            yield
            return
        tried = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._read_forever, tried)
            with anyio.move_on_after(STARTUP_WAIT_SECONDS):
                await tried.wait()
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()

    async def _read_forever(self, tried: anyio.Event) -> None:
        """Subscribe and fan messages out; after a failure, subscribe again and announce what is watched."""
        failures = 0
        while True:
            try:
                async with bus.subscribe(self._services) as messages:
                    tried.set()
                    if failures:
                        self._announce_watched()
                    failures = 0
                    async for message in messages:
                        self.on_message(message)
            except (RedisError, OSError) as error:
                log.warning("job updates: Redis subscription failed (%s); retrying", error)
            tried.set()
            await anyio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    def _announce_watched(self) -> None:
        for uri in list(self._watched):
            self.deliver(JobUpdated(uri=uri))
