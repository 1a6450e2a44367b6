"""A small in-process cache with a time-to-live, for lookups made on every request (API keys, virtual keys).

A change made through this process invalidates its entry at once (`discard`); other processes see it when the
entry expires, so the TTL bounds how long a revoked key can keep working elsewhere.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            # Rare, and cheap enough: forget everything rather than track recency on the hot path.
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.seconds, value)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
