"""A small in-process cache with a time-to-live, for lookups made on every request (API keys, virtual keys).

A change made through this process invalidates its entry at once (`discard`, `clear`); other processes see it when
the entry expires, so the TTL bounds how long a revoked key can keep working elsewhere.

`get_or_load` loads a missing entry once however many callers want it at the same moment: when an entry expires
under load, every request in flight misses together, and without it each would run the same query (bench/gateway.py
saw those bursts as a p99 of ~150 ms, once per TTL). A load that fails is not cached; its error reaches every
caller that waited for it. A load that overlaps an invalidation of its key is handed to the callers already waiting
but neither kept nor joined by later ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        # Bumped by every invalidation, so a load that started before one does not store what it read.
        self._generation = 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        value = self.get(key)
        if value is not None:
            return value
        loading = self._loading.get(key)
        if loading is None:
            # A task of its own, so one caller's cancellation does not cancel the load the others wait for.
            loading = self._loading[key] = asyncio.ensure_future(self._load(key, load, self._generation))
            loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], generation: int) -> V:
        value = await load()
        if generation == self._generation:
            self.put(key, value)
        return value

    def _loaded(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody waits for any more is not reported as lost

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            # Rare, and cheap enough: forget everything rather than track recency on the hot path.
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.seconds, value)

    def discard(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)
        self._loading.pop(key, None)  # later callers load afresh rather than join a load from before

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._loading.clear()
