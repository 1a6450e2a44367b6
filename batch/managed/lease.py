"""A step's lease: who may run it right now.

`held` takes the lease only for the step's current generation (so a stale job exits at once), marks that generation
as started, renews the lease every third of its life from a heartbeat task, and releases it at the end, all with
compare-and-set scripts so nobody renews or releases a lease that is no longer theirs.

A holder that cannot renew (its process stalled, Redis went away) must assume another runner may take over once
the TTL runs out, so `valid()` turns false a little before that moment by the holder's own clock, and runners check
it before each upstream request: after that point it sends nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from batch.managed import keys
from batch.managed.lua import LuaScript, redis_of
from portico.context import Services

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# Past this share of the TTL without a successful renewal the holder stops trusting its lease.
SAFE_SHARE = 0.8

_TAKE = LuaScript(
    """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if not redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)
_RENEW = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
)
_RELEASE = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)


class Lease:
    def __init__(self, redis: Redis, key: str, seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.token = secrets.token_hex(16)
        self.seconds = seconds
        self.lost = False
        self._trusted_until = 0.0

    @property
    def milliseconds(self) -> int:
        return int(self.seconds * 1000)

    def valid(self) -> bool:
        return not self.lost and time.monotonic() < self._trusted_until

    def _granted(self, asked_at: float) -> None:
        self._trusted_until = asked_at + self.seconds * SAFE_SHARE

    async def renew(self) -> None:
        asked_at = time.monotonic()
        try:
            renewed = await _RENEW(self.redis, [self.key], [self.token, self.milliseconds])
        except RedisError as error:
            # Not lost yet: the TTL may still run; `valid()` ends trust when it would have run out.
            log.warning("could not renew lease %s: %s", self.key, error)
            return
        if renewed:
            self._granted(asked_at)
        else:
            log.warning("lease %s was lost (expired or taken over)", self.key)
            self.lost = True

    async def keep(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.seconds / 3)
            await self.renew()

    async def release(self) -> None:
        try:
            await _RELEASE(self.redis, [self.key], [self.token])
        except RedisError as error:
            log.warning("could not release lease %s (it will expire): %s", self.key, error)


async def take(services: Services, batch_id: str, step: str, generation: int) -> Lease | None:
    redis = redis_of(services)
    lease = Lease(redis, keys.lease(batch_id, step), services.settings.batch.lease_seconds)
    asked_at = time.monotonic()
    names = [keys.generations(batch_id), keys.started(batch_id), lease.key]
    if not await _TAKE(redis, names, [step, generation, lease.token, lease.milliseconds]):
        return None
    lease._granted(asked_at)
    return lease


@contextlib.asynccontextmanager
async def held(services: Services, batch_id: str, step: str, generation: int) -> AsyncIterator[Lease | None]:
    """The step's lease for this generation while the block runs, renewed in the background; None when this
    generation is stale or another runner holds the step."""
    lease = await take(services, batch_id, step, generation)
    if lease is None:
        yield None
        return
    keeper = asyncio.create_task(lease.keep(), name=f"lease {lease.key}")
    try:
        yield lease
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await lease.release()
