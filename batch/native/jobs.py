"""The native-batch arq jobs and the cron that polls.

Three entry points run the same re-runnable step (`batch.native.steps.advance`) and differ only in when they are
queued: `batch_native_submit` right after create (`batch:<id>:submit`), `batch_native_poll` by the cron for each
due batch (`batch:<id>:poll:<poll_count>`), `batch_native_cancel` on cancel (`batch:<id>:cancel`, waiting for a
running step to finish rather than leaving the cancel to the next tick). Results are not kept (`keep_result=0`),
so a poll slot that found the batch busy can be queued again on the next tick.

The cron runs every `Settings.batch.poll_seconds` (by the second below a minute, by the minute above), once per
deployment (`unique`), and at worker start-up, so a restarted deployment resumes its batches at once.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.worker import Function, func

from batch.native import polling
from batch.native.steps import advance
from portico.context import Services
from portico.queue import enqueue, windowed
from portico.settings import Settings

# Staging or collecting a 200 MB file can take minutes; the batch's lease is renewed throughout. Not more: arq keeps
# a killed job's id (and so this batch's poll slot) blocked for the longest timeout of any function plus 10 s.
STEP_TIMEOUT = 600
CANCEL_WAIT = 120.0


def _services(ctx: dict[str, Any]) -> Services:
    services: Services = ctx["services"]
    return services


async def batch_native_submit(ctx: dict[str, Any], batch_id: str) -> None:
    await advance(_services(ctx), batch_id)


async def batch_native_poll(ctx: dict[str, Any], batch_id: str) -> None:
    await advance(_services(ctx), batch_id)


async def batch_native_cancel(ctx: dict[str, Any], batch_id: str) -> None:
    await advance(_services(ctx), batch_id, wait=CANCEL_WAIT)


async def batch_native_schedule(ctx: dict[str, Any]) -> int:
    services = _services(ctx)
    due = await polling.due(services)
    for batch_id, slot in due:
        await enqueue(services, "batch_native_poll", batch_id, job_id=windowed(f"batch:{batch_id}:poll:{slot}"))
    return len(due)


def functions(settings: Settings) -> list[Function]:
    return [
        func(step, keep_result=0, timeout=STEP_TIMEOUT)
        for step in (batch_native_submit, batch_native_poll, batch_native_cancel)
    ]


def cadence(seconds: int) -> dict[str, set[int]]:
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    return {"minute": set(range(0, 60, max(seconds // 60, 1))), "second": {0}}


def crons(settings: Settings) -> list[CronJob]:
    schedule = cadence(settings.batch.poll_seconds)
    return [cron(batch_native_schedule, run_at_startup=True, unique=True, timeout=60, **schedule)]  # type: ignore[arg-type]
