"""Keeping a batch's steps going: one call, `ensure`, used by batch creation (the plan), the planner (the chunks),
the last chunk to finish and a cancel (finalize), and the reconciler (everything unfinished).

For each step it asks Redis, atomically, what the step needs:

- its lease is held: it is running, leave it;
- the current generation took the lease once and holds it no more: that run ended without finishing the step (its
  worker died, it raised, it timed out). Bump the generation and queue the new one;
- the current generation's arq job is marked in progress but never took the lease: a worker claimed it and died
  before running it (arq would re-run it only after its in-progress key expires, the longest job timeout + 10 s).
  A live worker takes the lease within moments of claiming a job, so once one lease-length has passed since a pass
  first saw it so, it is treated as dead too;
- the current generation never started and nobody claimed it: queue it (again): arq drops the duplicate while the
  job is queued;
- no generation at all (a new step, or Redis lost its state): start at generation 1.

When a generation is bumped, the dead one's arq job is dropped from the queue too. arq keeps a job whose worker
died queued and "in progress" until the in-progress key expires, and its worker reads only the first
`queue_read_limit` (100) due jobs each poll: enough dead jobs at the head of the queue (ten kills of a worker running
ten chunks) would starve every worker, crons included, for an hour. The job can only be a no-op now (its generation
is stale), so removing it is safe; arq copes with a job whose keys vanished under a live worker too.

Chunks are queued a window at a time (`QUEUED_CHUNKS` waiting per batch), topped up as chunks finish and on every
reconciler pass, for the same reason: arq's workers read only the first 100 due jobs, oldest first, so queueing a
large batch's 2,000 chunks at once would keep every cron (this reconciler, the native pollers) and every other job
waiting until the batch had nearly drained.

A step that keeps dying is given up after `MAX_GENERATIONS`, and the caller fails the batch saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from batch.managed import keys
from batch.managed.lua import LuaScript, redis_of
from portico.context import Services
from portico.queue import QUEUE_NAME, enqueue

# Generous: a crash costs a generation, and so does each arq timeout of a chunk that is still being throttled.
MAX_GENERATIONS = 25
# Chunk jobs waiting in arq's queue per batch: enough to keep a few workers' free slots busy between two top-ups,
# few enough to leave room in the 100 jobs each worker poll reads.
QUEUED_CHUNKS = 16
LAUNCH = 1

# KEYS: generations, started, claimed, final, then per step its lease and its current job's in-progress key.
# ARGV: patience (ms), then per step its name and the generation the in-progress key was named after.
_ENSURE = LuaScript(
    """
if redis.call('EXISTS', KEYS[4]) == 1 then return {} end
local count = (#ARGV - 1) / 2
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local out = {}
local function launch(generation) out[#out + 1] = 1; out[#out + 1] = generation end
local function leave(generation) out[#out + 1] = 0; out[#out + 1] = generation end
local function bump(step) redis.call('HDEL', KEYS[3], step); return redis.call('HINCRBY', KEYS[1], step, 1) end
for i = 1, count do
  local step, expected = ARGV[1 + i], ARGV[1 + count + i]
  local generation = redis.call('HGET', KEYS[1], step)
  if not generation then
    redis.call('HSET', KEYS[1], step, 1)
    launch(1)
  elseif generation ~= expected or redis.call('EXISTS', KEYS[4 + i]) == 1 then
    leave(tonumber(generation))
  elseif redis.call('HGET', KEYS[2], step) == generation then
    launch(bump(step))
  elseif redis.call('EXISTS', KEYS[4 + count + i]) == 1 then
    local seen = redis.call('HGET', KEYS[3], step)
    local seen_generation, seen_at = string.match(seen or '', '^(%d+):(%d+)$')
    if seen_generation == generation and now - tonumber(seen_at) >= tonumber(ARGV[1]) then
      launch(bump(step))
    else
      if seen_generation ~= generation then redis.call('HSET', KEYS[3], step, generation .. ':' .. now) end
      leave(tonumber(generation))
    end
  else
    launch(tonumber(generation))
  end
end
return out
"""
)


@dataclass(frozen=True)
class Launch:
    step: str
    generation: int

    def job(self, batch_id: str) -> tuple[str, tuple[Any, ...]]:
        """The arq function and arguments that run this generation of the step."""
        named = {keys.PLAN: keys.PLAN_FUNCTION, keys.FINALIZE: keys.FINALIZE_FUNCTION}
        if self.step in named:
            return named[self.step], (batch_id, self.generation)
        index = int(self.step.removeprefix("chunk:"))
        return keys.CHUNK_FUNCTION, (batch_id, index, self.generation)


async def _decide(services: Services, batch_id: str, steps: Sequence[str]) -> list[Launch]:
    redis = redis_of(services)
    # The in-progress key to look at is named after the current generation, read first; the script acts only on
    # steps whose generation is still the one read (a concurrent pass may have moved it; the next pass decides).
    current = await redis.hmget(keys.generations(batch_id), list(steps))  # type: ignore[misc]
    expected = [int(found) if found is not None else 0 for found in current]
    names = [keys.generations(batch_id), keys.started(batch_id), keys.claimed(batch_id), keys.final(batch_id)]
    names += [keys.lease(batch_id, step) for step in steps]
    names += [in_progress_key_prefix + keys.job_id(batch_id, s, g) for s, g in zip(steps, expected, strict=True)]
    patience = services.settings.batch.lease_seconds * 1000
    flat = await _ENSURE(redis, names, [patience, *steps, *expected])
    if not flat:
        return []  # the batch is final
    launches = [Launch(step, int(flat[2 * i + 1])) for i, step in enumerate(steps) if int(flat[2 * i]) == LAUNCH]
    was = dict(zip(steps, expected, strict=True))
    dead = [keys.job_id(batch_id, one.step, was[one.step]) for one in launches if one.generation > was[one.step] > 0]
    await _drop_jobs(services, dead)
    return launches


async def _drop_jobs(services: Services, job_ids: list[str]) -> None:
    """Remove dead generations' jobs from arq's queue (see the module docstring)."""
    if not job_ids:
        return
    async with redis_of(services).pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zrem(QUEUE_NAME, job_id)
            pipe.delete(job_key_prefix + job_id, in_progress_key_prefix + job_id, retry_key_prefix + job_id)
        await pipe.execute()


async def ensure(services: Services, batch_id: str, steps: Sequence[str], *, queue_at_most: int = 0) -> list[str]:
    """Make sure each step is running or queued (with `queue_at_most`, at most that many waiting in the queue, the
    first steps first; the rest wait for a later call); returns the steps that used up their generations."""
    if not steps:
        return []
    launches = await _decide(services, batch_id, steps)
    exhausted = [launch.step for launch in launches if launch.generation > MAX_GENERATIONS]
    runnable = [launch for launch in launches if launch.generation <= MAX_GENERATIONS]
    await _queue_missing(services, batch_id, runnable, queue_at_most or len(runnable))
    return exhausted


async def _queue_missing(services: Services, batch_id: str, launches: list[Launch], window: int) -> None:
    """Queue launches whose job arq does not already hold while fewer than `window` wait. The existence check is one
    round trip for all of them, so the reconciler's pass over a large batch costs little."""
    if not launches:
        return
    redis = redis_of(services)
    async with redis.pipeline(transaction=False) as pipe:
        for launch in launches:
            pipe.exists(job_key_prefix + keys.job_id(batch_id, launch.step, launch.generation))
        held = await pipe.execute()
    room = window - sum(1 for exists in held if exists)
    for launch, exists in zip(launches, held, strict=True):
        if not exists and room > 0:
            function, args = launch.job(batch_id)
            await enqueue(services, function, *args, job_id=keys.job_id(batch_id, launch.step, launch.generation))
            room -= 1


async def ensure_chunks(services: Services, batch_id: str, indices: Sequence[int]) -> list[str]:
    """The unsealed chunks `indices` (in order) running or queued a window at a time; finalize once none is left."""
    if not indices:
        return await ensure(services, batch_id, [keys.FINALIZE])
    return await ensure(services, batch_id, [keys.chunk_step(i) for i in indices], queue_at_most=QUEUED_CHUNKS)
