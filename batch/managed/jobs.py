"""The managed-batch arq jobs and the reconciler cron, as `workers.worker` registers them.

Results are not kept (`keep_result=0`): a step's job id must be free to be queued again once its run has ended (a
finalize that found runners still busy, a chunk run that could not take its lease), and generations already keep
two runs of one step from sharing an id. Timeouts stay the worker's default: a chunk still running at the timeout
is cancelled, releases its lease, and the next generation carries on from its checkpoints.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.worker import Function, func

from batch.managed import keys
from batch.managed.finalize import finalize
from batch.managed.plan import plan
from batch.managed.reconcile import reconcile
from batch.managed.runner import run_chunk
from portico.settings import Settings


async def batch_managed_plan(ctx: dict[str, Any], batch_id: str, generation: int) -> None:
    await plan(ctx["services"], batch_id, generation)


async def batch_managed_chunk(ctx: dict[str, Any], batch_id: str, index: int, generation: int) -> None:
    await run_chunk(ctx["services"], batch_id, index, generation)


async def batch_managed_finalize(ctx: dict[str, Any], batch_id: str, generation: int) -> None:
    await finalize(ctx["services"], batch_id, generation)


async def batch_managed_reconcile(ctx: dict[str, Any]) -> int:
    return await reconcile(ctx)


def functions(settings: Settings) -> list[Function]:
    return [
        func(batch_managed_plan, name=keys.PLAN_FUNCTION, keep_result=0),
        func(batch_managed_chunk, name=keys.CHUNK_FUNCTION, keep_result=0),
        func(batch_managed_finalize, name=keys.FINALIZE_FUNCTION, keep_result=0),
    ]


def crons(settings: Settings) -> list[CronJob]:
    """The reconciler every `reconcile_seconds` (whole seconds within a minute, or whole minutes past one)."""
    every = settings.batch.reconcile_seconds
    if every < 60:
        schedule: dict[str, Any] = {"second": set(range(0, 60, every))}
    else:
        schedule = {"second": 0, "minute": set(range(0, 60, max(1, every // 60)))}
    return [cron(batch_managed_reconcile, run_at_startup=True, unique=True, **schedule)]
