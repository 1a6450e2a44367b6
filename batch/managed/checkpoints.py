"""Line checkpoints: each finished line's result, kept in Redis until its chunk is sealed into blobs.

A line's result goes into its chunk's `ok` or `failed` hash under its physical line number, and in the same atomic
script the batch's live counters move, but only if neither hash had the line yet: a line finished twice (a runner
that lost its lease racing its successor) is counted and kept once. A restarted chunk skips every line found here,
so a killed worker re-sends only the requests it had in flight.

The writes are grouped (`commits`: one script call carries every line finished meanwhile), and the same script
throttles progress announcements: the first write after a quiet `PROGRESS_MS` returns the counters for a caller to
publish, so subscribers see counts move about twice a second whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from batch.managed import keys
from batch.managed.lua import LuaScript, redis_of
from batch.models import RequestCounts
from portico.context import Services

SCAN_COUNT = 200


async def finished_lines(services: Services, batch_id: str, index: int) -> set[int]:
    redis = redis_of(services)
    found: set[int] = set()
    for name in (keys.succeeded_lines(batch_id, index), keys.failed_lines(batch_id, index)):
        found.update(int(line_no) for line_no in await redis.hkeys(name))  # type: ignore[misc]
    return found


async def sizes(services: Services, batch_id: str, index: int) -> tuple[int, int]:
    """How many lines of the chunk succeeded and failed so far."""
    redis = redis_of(services)
    succeeded = await redis.hlen(keys.succeeded_lines(batch_id, index))  # type: ignore[misc]
    failed = await redis.hlen(keys.failed_lines(batch_id, index))  # type: ignore[misc]
    return int(succeeded), int(failed)


async def results(services: Services, name: str) -> AsyncIterator[bytes]:
    """The result lines kept under one hash, streamed (HSCAN), in no particular order."""
    redis = redis_of(services)
    async for _, value in redis.hscan_iter(name, count=SCAN_COUNT):
        yield value if isinstance(value, bytes) else str(value).encode()


async def live_counts(services: Services, batch_id: str, total: int) -> RequestCounts | None:
    if services.redis is None:
        return None
    completed, failed = await services.redis.hmget(keys.counts(batch_id), ["completed", "failed"])  # type: ignore[misc]
    if completed is None and failed is None:
        return None
    return RequestCounts(total=total, completed=int(completed or 0), failed=int(failed or 0))


_SEED = LuaScript(
    """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSETNX', KEYS[1], 'completed', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'failed', ARGV[2])
end
return 0
"""
)


async def seed_counts(services: Services, batch_id: str, completed: int, failed: int) -> None:
    """Start the live counters from what SQL knows (sealed chunks), unless they already run or the batch is final."""
    await _SEED(redis_of(services), [keys.counts(batch_id), keys.final(batch_id)], [completed, failed])
