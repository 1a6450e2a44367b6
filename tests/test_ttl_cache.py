"""The per-process TTL cache's single-flight loads (portico/ttl_cache.py)."""

from __future__ import annotations

import asyncio

import pytest

from portico.ttl_cache import TtlCache


class Loader:
    def __init__(self, value: str = "v", error: Exception | None = None) -> None:
        self.calls = 0
        self.value = value
        self.error = error
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def test_concurrent_misses_share_one_load_and_the_value_is_kept() -> None:
    cache: TtlCache[str, str] = TtlCache(60)
    load = Loader()
    waiting = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*waiting) == ["v"] * 50
    assert (load.calls, cache.get("k")) == (1, "v")
    assert await cache.get_or_load("k", load) == "v" and load.calls == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_kept() -> None:
    cache: TtlCache[str, str] = TtlCache(60)
    load = Loader(error=LookupError("no such key"))
    waiting = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(outcome) for outcome in outcomes] == ["no such key"] * 3
    assert (load.calls, cache.get("k")) == (1, None)
    retry = Loader("second")
    retry.release.set()
    assert await cache.get_or_load("k", retry) == "second"


async def test_a_load_overlapping_an_invalidation_is_neither_kept_nor_joined() -> None:
    cache: TtlCache[str, str] = TtlCache(60)
    before = Loader("read before the revocation")
    waiting = asyncio.create_task(cache.get_or_load("k", before))
    await asyncio.sleep(0)
    cache.discard("k")
    after = Loader("read after it")
    later = asyncio.create_task(cache.get_or_load("k", after))
    await asyncio.sleep(0)
    before.release.set()
    assert await waiting == "read before the revocation"
    after.release.set()
    assert await later == "read after it"
    assert (before.calls, after.calls, cache.get("k")) == (1, 1, "read after it")


async def test_one_caller_cancelled_does_not_cancel_the_load_for_the_others() -> None:
    cache: TtlCache[str, str] = TtlCache(60)
    load = Loader()
    first = asyncio.create_task(cache.get_or_load("k", load))
    second = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    first.cancel()
    load.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "v" and load.calls == 1


async def test_entries_expire() -> None:
    cache: TtlCache[str, str] = TtlCache(0.01)
    cache.put("k", "v")
    assert cache.get("k") == "v"
    await asyncio.sleep(0.02)
    assert cache.get("k") is None
