"""Group commit of line checkpoints: every result finished since the last write goes to Redis in ONE script call.

A line task hands its finished result to the process's committer and waits until the write that carries it has
completed; it keeps its limiter slot meanwhile (`runner.ChunkRun.settle`), so "at most `concurrency` requests sent
and not yet checkpointed" holds exactly as with one write per line, and so does what a SIGKILL costs.

There is one committer per Redis client (one per worker process), shared by every chunk of every batch it runs, so a
write carries whatever finished meanwhile across all of them. A write is made by a short-lived task that runs while
results are waiting and ends when none are; results that arrive while one write is in flight go in the next. Under
light load a write carries one line (as before); under load, many, which is what keeps the worker's CPU per line
down: a Redis command costs the client far more than the bytes it carries.

The script applies `checkpoints`' rule to each line (kept and counted once, whichever hash already has it) and
throttles progress announcements per batch: for a batch whose marker had lapsed, the counts right after the write
come back, and the first waiter of that batch publishes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from redis.exceptions import RedisError

from batch.managed import keys
from batch.managed.lua import LuaScript, OwnConnection, redis_of
from portico.context import Services

if TYPE_CHECKING:
    from redis.asyncio import Redis

PROGRESS_MS = 500

# KEYS: four per chunk (ok hash, failed hash, batch counts, batch progress marker).
# ARGV: the progress marker's life in ms, then per chunk: its number of lines, then (line_no, kind, line) per line.
# Returns two numbers per chunk: the batch's counts when this write should be announced, else -1, -1.
_RECORD = LuaScript(
    """
local at = 2
local answer = {}
for base = 0, #KEYS - 4, 4 do
  local ok, failed, counts, progress = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  local added = {completed = 0, failed = 0}
  for _ = 1, tonumber(ARGV[at]) do
    local line_no, kind = ARGV[at + 1], ARGV[at + 2]
    if redis.call('HEXISTS', ok, line_no) == 0 and redis.call('HEXISTS', failed, line_no) == 0 then
      redis.call('HSET', kind == 'completed' and ok or failed, line_no, ARGV[at + 3])
      added[kind] = added[kind] + 1
    end
    at = at + 3
  end
  at = at + 1
  for kind, count in pairs(added) do
    if count > 0 then redis.call('HINCRBY', counts, kind, count) end
  end
  if added.completed + added.failed > 0 and redis.call('SET', progress, '1', 'NX', 'PX', ARGV[1]) then
    local now = redis.call('HMGET', counts, 'completed', 'failed')
    answer[#answer + 1] = tonumber(now[1]) or 0
    answer[#answer + 1] = tonumber(now[2]) or 0
  else
    answer[#answer + 1] = -1
    answer[#answer + 1] = -1
  end
end
return answer
"""
)


@dataclass
class _Pending:
    """The lines of one chunk waiting for the next write, and their waiters."""

    lines: list[tuple[int, str, bytes]] = field(default_factory=list)
    waiters: list[asyncio.Future[tuple[int, int] | None]] = field(default_factory=list)


class Committer:
    def __init__(self, redis: Redis) -> None:
        # One write in flight at a time, so one connection of its own (cheaper per call than the client's path).
        self._link = OwnConnection(redis)
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._writer: asyncio.Task[None] | None = None

    async def record(self, batch_id: str, index: int, line_no: int, ok: bool, line: bytes) -> tuple[int, int] | None:
        """Checkpoint one finished line; returns once it is in Redis. When this write is the one to announce for
        the batch (about twice a second), returns its (completed, failed) counts to the first waiter of it."""
        waiting = self._pending.setdefault((batch_id, index), _Pending())
        waiting.lines.append((line_no, "completed" if ok else "failed", line))
        done: asyncio.Future[tuple[int, int] | None] = asyncio.get_running_loop().create_future()
        waiting.waiters.append(done)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_while_pending(), name="batch checkpoint writer")
        return await done

    async def _write_while_pending(self) -> None:
        try:
            while self._pending:
                # Let the lines whose answers arrived in this same loop pass join the write.
                await asyncio.sleep(0)
                batch, self._pending = self._pending, {}
                await self._write(batch)
        except BaseException as error:
            # A writer cancelled (the loop shutting down) or broken leaves no waiter hanging.
            left, self._pending = self._pending, {}
            _fail(_every_waiter(left.values()), error)
            raise
        finally:
            self._writer = None

    async def _write(self, batch: dict[tuple[str, int], _Pending]) -> None:
        names: list[str] = []
        args: list[str | int | bytes] = [PROGRESS_MS]
        for (batch_id, index), waiting in batch.items():
            names += [keys.succeeded_lines(batch_id, index), keys.failed_lines(batch_id, index)]
            names += [keys.counts(batch_id), keys.progress(batch_id)]
            args.append(len(waiting.lines))
            for line_no, kind, line in waiting.lines:
                args += [line_no, kind, line]
        try:
            answer = await self._link.run(_RECORD, names, args)
        except RedisError as error:
            # Each waiter raises it, as its own write would have: the lines' chunk run fails and is run again.
            _fail(_every_waiter(batch.values()), error)
            return
        except BaseException as error:
            _fail(_every_waiter(batch.values()), error)
            raise
        # The progress marker is set once per batch, so at most one chunk of a batch gets counts back.
        for position, waiting in enumerate(batch.values()):
            completed, failed = int(answer[2 * position]), int(answer[2 * position + 1])
            counts = (completed, failed) if completed >= 0 else None
            for number, done in enumerate(waiting.waiters):
                if not done.done():
                    done.set_result(counts if number == 0 else None)


def _every_waiter(batch: Iterable[_Pending]) -> list[asyncio.Future[tuple[int, int] | None]]:
    return [done for waiting in batch for done in waiting.waiters]


def _fail(waiters: list[asyncio.Future[tuple[int, int] | None]], error: BaseException) -> None:
    for done in waiters:
        if done.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(error)


_COMMITTERS: WeakKeyDictionary[Redis, Committer] = WeakKeyDictionary()


def committer(services: Services) -> Committer:
    """The committer of this process's Redis client (one per event loop: tests run several apps, each its own)."""
    redis = redis_of(services)
    found = _COMMITTERS.get(redis)
    if found is None:
        found = _COMMITTERS[redis] = Committer(redis)
    return found
