"""The reconciler: every `reconcile_seconds`, on any worker, each unfinished managed batch gets what it needs to move
on. Nothing depends on a job that only Redis remembers: after a worker's death or a lost Redis the batch resumes
from its SQL rows (lines that were in flight run again).

- validating: the plan step (it re-splits only if no chunks were recorded);
- in_progress: every unsealed chunk (`steps.ensure` restarts dead ones under a new generation), the finalize step
  once all are sealed, and the live counters re-seeded from the sealed chunks if Redis lost them;
- past the window: the stop flag, then finalize (which ends it as `expired`);
- cancelling: the stop flag again (it may have been lost), then finalize;
- finalizing: finalize.

A step that keeps dying is given up after `steps.MAX_GENERATIONS` runs, failing the batch with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from batch import store
from batch.managed import checkpoints, chunk_rows, keys, steps
from batch.managed.finalize import past_window
from batch.managed.lua import redis_of
from batch.managed.plan import fail
from batch.managed.seal import drop_parts
from batch.managed.stop import CANCELLED, EXPIRED, FAILED, request_stop
from batch.states import BatchStatus
from portico.context import Services
from portico.db.batches import BatchRow
from portico.errors import PorticoError

log = logging.getLogger(__name__)
S = BatchStatus
ABANDONED_TTL_SECONDS = 24 * 3600


async def _keep_running(services: Services, row: BatchRow) -> list[str]:
    chunks = await chunk_rows.all_chunks(services, row.id)
    sealed = [chunk for chunk in chunks if chunk.done]
    await checkpoints.seed_counts(services, row.id, sum(c.completed for c in sealed), sum(c.failed for c in sealed))
    return await steps.ensure_chunks(services, row.id, [chunk.index for chunk in chunks if not chunk.done])


async def _keep_going(services: Services, row: BatchRow) -> list[str]:
    """Ensure what the batch needs now; returns the steps given up on."""
    status = BatchStatus(row.status)
    if status is S.CANCELLING:
        await request_stop(services, row.id, CANCELLED)
        return await steps.ensure(services, row.id, [keys.FINALIZE])
    if status is S.FINALIZING:
        return await steps.ensure(services, row.id, [keys.FINALIZE])
    if past_window(row):
        await request_stop(services, row.id, EXPIRED)
        return await steps.ensure(services, row.id, [keys.FINALIZE])
    if status is S.VALIDATING:
        return await steps.ensure(services, row.id, [keys.PLAN])
    return await _keep_running(services, row)


async def _give_up(services: Services, row: BatchRow, step: str) -> None:
    """Fail the batch. Its Redis state is left to expire rather than deleted: a runner still winding down must keep
    seeing the stop flag."""
    await request_stop(services, row.id, FAILED)
    await fail(services, row, "batch_step_failed", f"Step {step} failed {steps.MAX_GENERATIONS} times; see the logs.")
    chunks = await chunk_rows.all_chunks(services, row.id)
    await drop_parts(services, [chunk for chunk in chunks if chunk.done])
    async with redis_of(services).pipeline(transaction=False) as pipe:
        for name in keys.every_key(row.id, [chunk.index for chunk in chunks]):
            pipe.expire(name, ABANDONED_TTL_SECONDS)
        await pipe.execute()


async def reconcile_batch(services: Services, row: BatchRow) -> None:
    exhausted = await _keep_going(services, row)
    if exhausted:
        await _give_up(services, row, exhausted[0])


async def unfinished_batches(services: Services) -> list[BatchRow]:
    active = [status.value for status in store.ACTIVE]
    query = select(BatchRow).where(BatchRow.mode == "managed", BatchRow.status.in_(active)).order_by(BatchRow.id)
    async with services.sessions() as session:
        return list((await session.execute(query)).scalars())


async def reconcile(ctx: dict[str, Any]) -> int:
    """The arq cron job. One batch's trouble (a lost connection, a row that moved) does not stop the others."""
    services: Services = ctx["services"]
    rows = await unfinished_batches(services)
    for row in rows:
        try:
            await reconcile_batch(services, row)
        except (RedisError, SQLAlchemyError, PorticoError) as error:
            log.warning("reconciling batch %s: %s", row.id, error)
    return len(rows)
