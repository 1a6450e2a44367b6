"""Gateway-managed batches (`completion_window: "immediate"`, configs, providers without a batch API): Portico
sends every line through the gateway from the arq workers.

    create ─► plan ─► chunk 0 … chunk n (each: lease, lines, checkpoints, seal) ─► finalize ─► completed
                 ▲              ▲                                                   ▲
                 └──── reconciler (cron): restarts whatever died, settles cancel and expiry ─┘

- `plan` (batch.managed.plan) splits the input once into chunks by byte offsets, recorded in SQL;
- each chunk is one arq job holding a Redis lease; every finished line is checkpointed in Redis at once, so a
  killed worker costs only its requests in flight; a chunk writes its part blobs first and marks itself done second
  (batch.managed.runner, batch.managed.seal);
- `finalize` concatenates the parts into the output and error files and makes the batch final
  (batch.managed.finalize); cancel and expiry end the same way once every runner has stopped;
- steps run under generations (batch.managed.steps), so a dead step is re-run under a new arq job id at once
  instead of waiting for arq to give up on the old one; the reconciler (batch.managed.reconcile) does that.

Memory is flat: the input is streamed once to plan and read by ranges per chunk, results stream from Redis into
part blobs, and parts stream into the files.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from batch.managed import checkpoints, chunk_rows, keys, steps
from batch.managed.stop import CANCELLED, request_stop
from batch.models import RequestCounts
from portico.context import Services
from portico.db.batches import BatchRow

log = logging.getLogger(__name__)


class ManagedMode:
    async def start(self, services: Services, row: BatchRow) -> None:
        await steps.ensure(services, row.id, [keys.PLAN])

    async def cancel(self, services: Services, row: BatchRow) -> None:
        await request_stop(services, row.id, CANCELLED)
        await steps.ensure(services, row.id, [keys.FINALIZE])

    async def live_counts(self, services: Services, row: BatchRow) -> RequestCounts | None:
        try:
            live = await checkpoints.live_counts(services, row.id, row.total)
        except RedisError as error:
            log.warning("live counts of batch %s unavailable: %s", row.id, error)
            live = None
        if live is not None:
            return live
        completed, failed = await chunk_rows.sealed_counts(services, row.id)
        return RequestCounts(total=row.total, completed=completed, failed=failed)


MANAGED = ManagedMode()
