"""Stopping a running batch (cancel, expiry): a flag in Redis that runners watch.

The flag is set before anything waits for runners to end (`finalize` waits for every chunk lease to be released),
and a runner reads it afresh right after taking its lease and then every `POLL_SECONDS` from a watcher task, so a
line task's check before each request is a local read. A runner that started before the flag was set holds its
lease until its requests in flight have settled; one that starts after sees the flag before its first request.
Either way, once no lease is held, nothing more is sent.
"""

from __future__ import annotations

import asyncio
import time

from redis.exceptions import RedisError

from batch.managed import keys
from batch.managed.lua import redis_of
from portico.context import Services

POLL_SECONDS = 0.25
CANCELLED = "cancelled"
EXPIRED = "expired"
FAILED = "failed"


async def request_stop(services: Services, batch_id: str, reason: str) -> None:
    # NX: the first reason wins (a cancel after expiry stays an expiry for the runners; the row decides the end).
    await redis_of(services).set(keys.stop(batch_id), reason, nx=True)


async def stop_reason(services: Services, batch_id: str) -> str | None:
    raw = await redis_of(services).get(keys.stop(batch_id))
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class StopWatch:
    """What a chunk runner knows about stopping: the flag (polled) and the batch's own deadline (local)."""

    def __init__(self, services: Services, batch_id: str, expires_at: int | None) -> None:
        self.services = services
        self.batch_id = batch_id
        self.expires_at = expires_at
        self.reason: str | None = None

    @property
    def stopped(self) -> bool:
        if self.reason is None and self.expires_at is not None and time.time() >= self.expires_at:
            self.reason = EXPIRED
        return self.reason is not None

    async def refresh(self) -> bool:
        self.reason = self.reason or await stop_reason(self.services, self.batch_id)
        return self.stopped

    async def watch(self) -> None:
        while not self.stopped:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.refresh()
            except RedisError:
                # The lease cannot be renewed either, so `Lease.valid()` stops the runner if this lasts.
                continue
