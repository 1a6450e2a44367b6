"""The finalize step: a batch whose chunks will not run any more becomes final, with its files.

- every chunk sealed, batch `in_progress` → `finalizing` → `completed`;
- `cancelling` → `cancelled`, and past `expires_at` → `expired`: first the stop flag is set and every runner is
  waited for (no chunk lease held), so nothing is sent after the final state; then each unfinished chunk is sealed
  with the lines it finished (for expiry, the others go to the error file as `batch_expired`).

Then the parts are concatenated into the output and error files, the parts deleted, the row moved to its final
state with the files and the counts summed over the chunk rows (so the counts are the files' line counts), and the
batch's Redis state deleted. A cancel arriving while this runs makes the final move fail its compare-and-set; the
step then decides again, and the same files serve the cancelled batch.
"""

from __future__ import annotations

import asyncio
import time

from batch import store
from batch.managed import chunk_rows, keys
from batch.managed.lease import held
from batch.managed.lua import redis_of
from batch.managed.outputs import assemble_both
from batch.managed.seal import drop_parts, seal_unfinished
from batch.managed.source import input_file
from batch.managed.stop import CANCELLED, EXPIRED, request_stop, stop_reason
from batch.states import BatchStatus
from portico.context import Services
from portico.db.batches import BatchChunk, BatchRow
from portico.errors import Conflict
from portico.ids import now

S = BatchStatus
DECIDE_TRIES = 3
POLL_SECONDS = 0.2
# Longer than any reconciler pass that could have read the batch before it became final.
TOMBSTONE_SECONDS = 3600


def past_window(row: BatchRow) -> bool:
    return row.expires_at is not None and now() >= row.expires_at


async def _outcome(services: Services, row: BatchRow) -> BatchStatus | None:
    """Where the batch ends, or None while its chunks should still run."""
    status = BatchStatus(row.status)
    if status is S.CANCELLING:
        return S.CANCELLED
    if status is S.FINALIZING:
        return S.COMPLETED
    if past_window(row) or await stop_reason(services, row.id) == EXPIRED:
        return S.EXPIRED
    if status is S.IN_PROGRESS and await chunk_rows.unfinished(services, row.id) == 0:
        return S.COMPLETED
    return None


async def _runners_gone(services: Services, row: BatchRow, chunks: list[BatchChunk]) -> bool:
    """Wait (up to about one lease) until neither the planner nor any chunk runner holds a lease."""
    names = [keys.lease(row.id, keys.PLAN)]
    names += [keys.lease(row.id, keys.chunk_step(chunk.index)) for chunk in chunks if not chunk.done]
    deadline = time.monotonic() + services.settings.batch.lease_seconds + 1
    while await redis_of(services).exists(*names):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def _stop_runners(services: Services, row: BatchRow, outcome: BatchStatus) -> bool:
    """Stop every runner and seal what they left; False if some runner is still going (try again later)."""
    await request_stop(services, row.id, CANCELLED if outcome is S.CANCELLED else EXPIRED)
    chunks = await chunk_rows.all_chunks(services, row.id)
    if not await _runners_gone(services, row, chunks):
        return False
    source = await input_file(services, row)
    for chunk in chunks:
        if not chunk.done:
            key = source.blob_key if source is not None else ""
            await seal_unfinished(services, chunk, key, expire_rest=outcome is S.EXPIRED and source is not None)
    return True


async def _conclude(services: Services, row: BatchRow, outcome: BatchStatus) -> None:
    chunks = await chunk_rows.all_chunks(services, row.id)
    output_id, error_id = await assemble_both(services, row, chunks)
    await drop_parts(services, chunks)
    completed, failed = sum(c.completed for c in chunks), sum(c.failed for c in chunks)
    changes = {"output_file_id": output_id, "error_file_id": error_id, "completed": completed, "failed": failed}
    await store.transition(services, row, outcome, **changes)
    await forget(services, row.id, [chunk.index for chunk in chunks])


async def _finish(services: Services, batch_id: str) -> None:
    row = await store.load(services, batch_id)
    if row is None:
        return
    if row.status in store.TERMINAL:
        await forget(services, row.id, [chunk.index for chunk in await chunk_rows.all_chunks(services, row.id)])
        return
    outcome = await _outcome(services, row)
    if outcome is None:
        return
    if outcome in (S.CANCELLED, S.EXPIRED):
        if not await _stop_runners(services, row, outcome):
            return
    elif row.status == S.IN_PROGRESS:
        row = await store.transition(services, row, S.FINALIZING)
    await _conclude(services, row, outcome)


async def finalize(services: Services, batch_id: str, generation: int) -> None:
    """The arq job `batch:<id>:finalize:g<generation>`."""
    async with held(services, batch_id, keys.FINALIZE, generation) as lease:
        if lease is None:
            return
        for _ in range(DECIDE_TRIES):
            try:
                return await _finish(services, batch_id)
            except Conflict as error:
                if error.code != "concurrent_update":
                    raise


async def forget(services: Services, batch_id: str, chunk_indices: list[int]) -> None:
    """Delete the batch's Redis state (it is final; SQL and the files hold everything), leaving a tombstone."""
    redis = redis_of(services)
    await redis.set(keys.final(batch_id), "1", ex=TOMBSTONE_SECONDS)
    names = keys.every_key(batch_id, chunk_indices)
    for start in range(0, len(names), 500):
        await redis.delete(*names[start : start + 500])
