"""The fine-tuning arq jobs and the cron that polls.

Two entry points run the same re-runnable step (`finetune.steps.advance`) and differ only in when they are queued:
`finetune_submit` right after create (`ftjob:<id>:submit`) and `finetune_poll` by the cron for each due job
(`ftjob:<id>:poll:<poll_count>`). Cancel runs in the API call itself (`finetune.cancel`). Results are not kept
(`keep_result=0`), so a poll slot that found the job busy can be queued again on the next tick.

The cron runs every `Settings.batch.poll_seconds`, once per deployment (`unique`), and at worker start-up, so a
restarted deployment resumes its jobs at once.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.worker import Function, func

from batch.native.jobs import STEP_TIMEOUT, cadence
from finetune import polling
from finetune.steps import advance
from portico.context import Services
from portico.queue import enqueue, windowed
from portico.settings import Settings


def _services(ctx: dict[str, Any]) -> Services:
    services: Services = ctx["services"]
    return services


async def finetune_submit(ctx: dict[str, Any], job_id: str) -> None:
    await advance(_services(ctx), job_id)


async def finetune_poll(ctx: dict[str, Any], job_id: str) -> None:
    await advance(_services(ctx), job_id)


async def finetune_schedule(ctx: dict[str, Any]) -> int:
    services = _services(ctx)
    due = await polling.due(services)
    for job_id, slot in due:
        await enqueue(services, "finetune_poll", job_id, job_id=windowed(f"ftjob:{job_id}:poll:{slot}"))
    return len(due)


async def start(services: Services, job_id: str) -> None:
    await enqueue(services, "finetune_submit", job_id, job_id=f"ftjob:{job_id}:submit")


def functions(settings: Settings) -> list[Function]:
    return [func(step, keep_result=0, timeout=STEP_TIMEOUT) for step in (finetune_submit, finetune_poll)]


def crons(settings: Settings) -> list[CronJob]:
    schedule = cadence(settings.batch.poll_seconds)
    return [cron(finetune_schedule, run_at_startup=True, unique=True, timeout=60, **schedule)]  # type: ignore[arg-type]
