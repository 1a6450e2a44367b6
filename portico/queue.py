"""Putting work on the arq queue from anywhere (API handlers, jobs, crons), with deterministic job ids.

arq drops an enqueue whose job id is already queued, running or kept as a result, so a step enqueued twice (a
retried request, a reconciler pass racing a worker) runs once. Ids name the step and, where a step must be able
to run again after a worker died in it, its generation: `batch:<id>:plan:g<n>`, `batch:<id>:chunk:<n>:g<n>`,
`batch:<id>:poll:<count>`. (arq keeps a killed job's id blocked until its in-progress key expires, the longest job
timeout plus 10 s; a new generation is a new id.)
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis

from portico.context import Services
from portico.errors import ServiceUnavailable

QUEUE_NAME = "portico:queue"
# A job id that a killed worker held stays blocked in arq until its in-progress key expires (the longest job
# timeout + 10 s, ten minutes here). Ids of polls carry the current window too, so a poll that died with its worker
# is queued again under a fresh id within a window. Poll steps run under a per-object lease: two never overlap.
RETRY_WINDOW_SECONDS = 60


def arq_redis(services: Services) -> ArqRedis:
    if services.redis is None:
        raise ServiceUnavailable("Jobs need Redis: set PORTICO_REDIS_URL (portico up starts an embedded one).")
    return ArqRedis(connection_pool=services.redis.connection_pool)


async def enqueue(services: Services, function: str, *args: Any, job_id: str, defer_seconds: float = 0) -> bool:
    """Queue `function(*args)` as `job_id`; False when a job with that id is already known to arq."""
    job = await arq_redis(services).enqueue_job(
        function,
        *args,
        _job_id=job_id,
        _queue_name=QUEUE_NAME,
        _defer_by=timedelta(seconds=defer_seconds) if defer_seconds else None,
    )
    return job is not None


def windowed(job_id: str) -> str:
    """`job_id` suffixed with the current retry window (see RETRY_WINDOW_SECONDS)."""
    return f"{job_id}:w{int(time.time()) // RETRY_WINDOW_SECONDS}"
