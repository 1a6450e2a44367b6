"""The arq worker: long-lived jobs run here, in `portico worker` processes or inside `portico up`.

`workers` never imports from `mcp_server` or `rest_api`: jobs reach the domain through the same services.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, func

from batch.managed import jobs as managed_jobs
from batch.native import jobs as native_jobs
from finetune import jobs as finetune_jobs
from portico.gc_tuning import freeze_start_up_objects
from portico.queue import QUEUE_NAME
from portico.services import close_services, open_services
from portico.settings import Settings
from workers.housekeeping import purge_idempotency_keys, purge_upload_grants

log = logging.getLogger(__name__)


def build_worker(
    settings: Settings, *, handle_signals: bool = True, burst: bool = False, freeze_gc: bool = False
) -> Worker:
    if not settings.redis_url:
        raise ValueError("the worker needs PORTICO_REDIS_URL (portico up starts an embedded server by itself)")

    async def startup(ctx: dict[str, Any]) -> None:
        # The API process owns migrations; a worker only connects.
        ctx["services"] = await open_services(settings, migrate=False)
        if freeze_gc:
            freeze_start_up_objects()
        log.info("worker ready on queue %s", QUEUE_NAME)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "services" in ctx:
            await close_services(ctx["services"])

    return Worker(
        functions=[
            func(purge_upload_grants),
            func(purge_idempotency_keys),
            *managed_jobs.functions(settings),
            *native_jobs.functions(settings),
            *finetune_jobs.functions(settings),
        ],
        cron_jobs=[
            cron(purge_upload_grants, minute={0, 15, 30, 45}, run_at_startup=False),
            cron(purge_idempotency_keys, minute={5, 35}, run_at_startup=False),
            *managed_jobs.crons(settings),
            *native_jobs.crons(settings),
            *finetune_jobs.crons(settings),
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=QUEUE_NAME,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        burst=burst,
        # How long an idle worker waits between looks at the queue: each hop of a batch (plan, its chunks, the
        # finalize) waits for one. 50 ms costs an idle worker ~20 cheap Redis reads a second; at 0.2 s a 20,000-line
        # batch's first result came ~0.12 s later (bench/batches.py).
        poll_delay=0.05,
        # arq reads the first `queue_read_limit` due jobs of the queue, oldest first, and never past them: jobs
        # waiting their turn at the head (chunks of big batches) would otherwise hide the crons behind them.
        queue_read_limit=1000,
    )
