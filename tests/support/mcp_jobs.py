"""Driving batches as another process would, and watching them over MCP in both protocol eras.

`BatchDriver` opens its own `Services` on the running Portico's database and Redis and moves batch rows with the
batch store's own `transition`/`save`, which publish on the job bus exactly as the workers do. `Updates` is what a
client sees: `notifications/resources/updated` URIs, from a 2026-07-28 `subscriptions/listen` stream or from the
2025-11-25 session's GET stream (`resources/subscribe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated, Subscription
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ResourceUpdatedNotification, TextResourceContents

from batch import store
from batch.states import BatchStatus
from gateway.route import Route
from portico.context import Services
from portico.db.batches import BatchRow
from portico.ids import new_id, now
from tests.support.server import RunningPortico

# Negotiated protocol version → how the client is told to reach it.
MODES = {"2025-11-25": "legacy", "2026-07-28": "auto"}
# A bound on waits that should end at once; reaching it means the update never came (a failure, not a timing).
PATIENCE_SECONDS = 30


class BatchDriver:
    """Creates and moves batches through the store's state machine, publishing each change on the bus."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def create(self, workspace_id: str, total: int) -> BatchRow:
        # `native`: its counts are the row's own (a managed batch's live counts would come from its chunks).
        row = BatchRow(
            id=new_id("batch_"),
            workspace_id=workspace_id,
            api_key_id="key_driver",
            organisation_id="org_driver",
            endpoint="/v1/chat/completions",
            input_file_id="file-driver",
            completion_window="24h",
            mode="native",
            provider="openai",
            status=BatchStatus.VALIDATING.value,
            sealed_route=store.seal_route(self.services, Route(provider="openai", provider_key="sk-driver")),
            options={},
            total=total,
            completed=0,
            failed=0,
            errors=[],
            created_at=now(),
            expires_at=now() + 24 * 3600,
            # Never due: with a worker running, the native poller would otherwise submit it to the provider.
            next_poll_at=now() + 365 * 24 * 3600,
            poll_count=0,
        )
        async with self.services.sessions() as session, session.begin():
            session.add(row)
        return row

    async def start(self, row: BatchRow) -> None:
        await store.transition(self.services, row, BatchStatus.IN_PROGRESS)

    async def count(self, row: BatchRow, completed: int, failed: int = 0) -> None:
        await store.save(self.services, row, completed=completed, failed=failed)

    async def finish(self, row: BatchRow) -> None:
        await store.transition(self.services, row, BatchStatus.FINALIZING)
        await store.transition(self.services, row, BatchStatus.COMPLETED)


class ProgressSeen:
    """Progress notifications of one call, as they arrive."""

    def __init__(self) -> None:
        self.values: list[tuple[float, float | None, str | None]] = []
        self._arrived: asyncio.Queue[float] = asyncio.Queue()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append((progress, total, message))
        self._arrived.put_nowait(progress)

    async def reaches(self, progress: float) -> None:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while await self._arrived.get() < progress:
                pass


@contextlib.asynccontextmanager
async def connect(
    portico: RunningPortico, key: str, protocol: str, updates: Updates | None = None
) -> AsyncIterator[Client]:
    """An MCP session authenticated with `key`, without a response cache; with `updates`, its resource updates
    (2025-11-25: they arrive as notifications on the session's GET stream) are collected there."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(PATIENCE_SECONDS * 2)) as http:
        transport = streamable_http_client(portico.mcp, http_client=http)
        handler = updates.on_message if updates is not None else None
        async with Client(transport, mode=MODES[protocol], cache=None, message_handler=handler) as client:
            assert client.protocol_version == protocol
            yield client


class Updates:
    """The resource URIs a client is told changed, in arrival order."""

    def __init__(self) -> None:
        self._arrived: asyncio.Queue[str] = asyncio.Queue()
        # URIs subscribed only to learn that updates flow (see `watching`).
        self.ignored: set[str] = set()

    async def on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self._arrived.put_nowait(str(message.params.uri))

    async def next_any(self) -> str:
        return await self._arrived.get()

    async def next(self) -> str:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                uri = await self._arrived.get()
                if uri not in self.ignored:
                    return uri


class Watcher:
    """Subscribing and receiving, the same way in both eras. 2026-07-28: one `subscriptions/listen` stream over the
    current URIs, reopened when they change. 2025-11-25: `resources/subscribe` / `resources/unsubscribe`, with the
    updates collected from the session's GET stream by `updates`."""

    def __init__(self, client: Client, updates: Updates) -> None:
        self.client = client
        self.updates = updates
        self.legacy = client.protocol_version == "2025-11-25"
        self._uris: set[str] = set()
        self._stream = contextlib.AsyncExitStack()
        self._subscription: Subscription | None = None

    async def subscribe(self, *uris: str) -> None:
        if self.legacy:
            for uri in uris:
                with warnings.catch_warnings(category=MCPDeprecationWarning, action="ignore"):
                    await self.client.subscribe_resource(uri)
        else:
            await self._listen(self._uris | set(uris))
        self._uris |= set(uris)

    async def unsubscribe(self, *uris: str) -> None:
        if self.legacy:
            for uri in uris:
                with warnings.catch_warnings(category=MCPDeprecationWarning, action="ignore"):
                    await self.client.unsubscribe_resource(uri)
        else:
            await self._listen(self._uris - set(uris))
        self._uris -= set(uris)

    async def next(self) -> str:
        """The next updated URI (not an ignored one); fails when none comes."""
        if self.legacy:
            return await self.updates.next()
        assert self._subscription is not None, "not subscribed"
        async with asyncio.timeout(PATIENCE_SECONDS):
            async for event in self._subscription:
                if isinstance(event, ResourceUpdated) and event.uri not in self.updates.ignored:
                    return event.uri
        raise AssertionError("the listen stream ended")

    async def read(self, uri: str) -> dict[str, Any]:
        [contents] = (await self.client.read_resource(uri)).contents
        assert isinstance(contents, TextResourceContents)
        found: dict[str, Any] = json.loads(contents.text)
        return found

    async def _listen(self, uris: set[str]) -> None:
        """Close the current stream and open one over `uris` (entering waits for the server's acknowledgement)."""
        await self._stream.aclose()
        self._stream = contextlib.AsyncExitStack()
        self._subscription = None
        if uris:
            listening = self.client.listen(resource_subscriptions=sorted(uris))
            self._subscription = await self._stream.enter_async_context(listening)

    async def close(self) -> None:
        await self._stream.aclose()


@contextlib.asynccontextmanager
async def watching(
    portico: RunningPortico, key: str, protocol: str, driver: BatchDriver, workspace_id: str
) -> AsyncIterator[Watcher]:
    """A connected `Watcher` ready to receive. A 2025-11-25 session's updates ride its GET stream, which the client
    opens on its own after the handshake and nothing announces; updates sent before it is open are lost. So a probe
    batch is subscribed and announced until one of its updates arrives (its updates are ignored afterwards)."""
    updates = Updates()
    async with connect(portico, key, protocol, updates) as client:
        watcher = Watcher(client, updates)
        try:
            if watcher.legacy:
                await _wait_for_the_get_stream(watcher, driver, workspace_id)
            yield watcher
        finally:
            await watcher.close()


async def _wait_for_the_get_stream(watcher: Watcher, driver: BatchDriver, workspace_id: str) -> None:
    probe = await driver.create(workspace_id, total=1)
    uri = f"portico://batches/{probe.id}"
    await watcher.subscribe(uri)
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            await store.announce(driver.services, probe)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    if await watcher.updates.next_any() == uri:
                        break
    watcher.updates.ignored.add(uri)
