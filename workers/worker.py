"""The arq worker: long-lived jobs run here, in `portico worker` processes or inside `portico up`.

`workers` never imports from `mcp_server` or `rest_api`: jobs reach the domain through the same services.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from portico.services import close_services, open_services
from portico.settings import Settings
from workers.housekeeping import purge_upload_grants

log = logging.getLogger(__name__)

QUEUE_NAME = "portico:queue"


def build_worker(settings: Settings, *, handle_signals: bool = True, burst: bool = False) -> Worker:
    if not settings.redis_url:
        raise ValueError("the worker needs PORTICO_REDIS_URL (portico up starts an embedded server by itself)")

    async def startup(ctx: dict[str, Any]) -> None:
        # The API process owns migrations; a worker only connects.
        ctx["services"] = await open_services(settings, migrate=False)
        log.info("worker ready on queue %s", QUEUE_NAME)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "services" in ctx:
            await close_services(ctx["services"])

    return Worker(
        functions=[purge_upload_grants],
        cron_jobs=[cron(purge_upload_grants, minute={0, 15, 30, 45}, run_at_startup=False)],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=QUEUE_NAME,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        burst=burst,
        poll_delay=0.2,
    )
