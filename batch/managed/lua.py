"""Lua scripts run by SHA (sent once per server, not with every call), and the Redis client of the services.

Each script is one atomic decision that two processes could otherwise race on: taking a step's lease only for
its current generation, recording a line's result once, bumping a dead step's generation once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import NoScriptError

from portico.context import Services
from portico.errors import ServiceUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis


def redis_of(services: Services) -> Redis:
    if services.redis is None:
        raise ServiceUnavailable("Managed batches need Redis: set PORTICO_REDIS_URL (portico up starts one).")
    return services.redis


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        words = [*keys, *(arg if isinstance(arg, bytes) else str(arg) for arg in args)]
        try:
            return await self._run(redis, len(keys), words)
        except NoScriptError:
            # A restarted (or different) server has not seen it yet.
            await redis.script_load(self.source)
            return await self._run(redis, len(keys), words)

    async def _run(self, redis: Redis, key_count: int, words: list[str | bytes]) -> Any:
        # redis-py types its commands for both clients (`Awaitable[T] | T`); the asyncio client always awaits. Its
        # arguments are typed `str` but sent as encoded values, so bytes (a result line) go as they are.
        return await cast(Awaitable[Any], redis.evalsha(self.sha, key_count, *words))  # type: ignore[arg-type]
