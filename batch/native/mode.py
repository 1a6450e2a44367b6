"""Native batches as a `BatchMode`: the provider's own batch API runs the job; Portico's workers stage, poll and
collect (`batch.native.steps`), on arq jobs with deterministic ids.

`start` queues the submit at once and also schedules a poll, so a batch whose submit job is lost (Redis flushed or
unreachable, a worker gone before it ran) is still picked up by the cron. `cancel` queues a step that asks the
provider to stop (or, if no provider job exists yet, ends the batch without creating one); the polls then follow
the provider to its cancelled state.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from batch.models import RequestCounts
from batch.native.polling import poll_at
from portico.context import Services
from portico.db.batches import BatchRow
from portico.ids import now
from portico.queue import enqueue

log = logging.getLogger(__name__)


class NativeMode:
    async def start(self, services: Services, row: BatchRow) -> None:
        await poll_at(services, row.id, now() + services.settings.batch.poll_seconds)
        await _queue(services, "batch_native_submit", row.id, f"batch:{row.id}:submit")

    async def cancel(self, services: Services, row: BatchRow) -> None:
        await poll_at(services, row.id, now())
        await _queue(services, "batch_native_cancel", row.id, f"batch:{row.id}:cancel")

    async def live_counts(self, services: Services, row: BatchRow) -> RequestCounts | None:
        # Each poll writes the provider's counts to the row: it is as fresh as anything Portico knows.
        return None


async def _queue(services: Services, function: str, batch_id: str, job_id: str) -> None:
    # The row is the truth and already due: if Redis is unreachable now, the cron picks the batch up later.
    try:
        await enqueue(services, function, batch_id, job_id=job_id)
    except RedisError as error:
        log.warning("could not queue %s for batch %s (%s); the poller will take it", function, batch_id, error)


NATIVE = NativeMode()
