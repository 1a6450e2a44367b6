"""One step at a time per native batch, across every worker process: a Redis lease held while a step runs.

The submit job, the cron's polls and a cancel can all be queued for one batch at once; two of them creating the
provider job, or collecting the output, side by side would duplicate work (OpenAI and Vertex creates are not
idempotent by themselves). The lease is short and renewed while the step runs, so a worker killed mid-step frees
the batch within `LEASE_SECONDS` instead of holding it for the length of a multi-hour staging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from portico.context import Services

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def batch_lock(services: Services, batch_id: str, *, wait: float = 0.0) -> AsyncIterator[bool]:
    """Yields True while this process holds `batch_id`'s lease, or False at once (after `wait` seconds at most)
    if another step holds it. Without Redis (one process, no queue) there is nobody to exclude."""
    if services.redis is None:
        yield True
        return
    lock = services.redis.lock(
        f"portico:lock:batch:{batch_id}", timeout=LEASE_SECONDS, blocking=wait > 0, blocking_timeout=wait or None
    )
    if not await lock.acquire():
        yield False
        return
    renewal = asyncio.create_task(_renew(lock, batch_id))
    try:
        yield True
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        with contextlib.suppress(LockError):
            await lock.release()


async def _renew(lock: Lock, batch_id: str) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            await lock.reacquire()
        except LockError:
            log.warning("lost the lease of batch %s while a step was running", batch_id)
            return
