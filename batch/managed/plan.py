"""The plan step of a managed batch: split the input once into chunks, record them, start them.

Re-runnable at every point: chunks are recorded in one transaction and only if the batch has none, the move to
`in_progress` is compare-and-set, and the chunks are started through `steps.ensure` (which the reconciler repeats
if this run dies before it gets there).
"""

from __future__ import annotations

import logging

from batch import store
from batch.managed import checkpoints, chunk_rows, keys, steps
from batch.managed.lease import held
from batch.managed.source import input_file
from batch.managed.split import split
from batch.states import BatchStatus
from portico.blob.base import BlobNotFound
from portico.context import Services
from portico.db.batches import BatchChunk, BatchRow
from portico.errors import Conflict

log = logging.getLogger(__name__)


async def fail(services: Services, row: BatchRow, code: str, message: str) -> None:
    """End the batch as `failed`, the reason on it (as OpenAI lists batch errors)."""
    try:
        await store.transition(services, row, BatchStatus.FAILED, errors=[{"code": code, "message": message}])
    except Conflict:
        log.info("batch %s moved on before it could be failed (%s)", row.id, code)


async def _record_chunks(services: Services, row: BatchRow) -> bool:
    """Split the input into chunk rows unless an earlier run did; False when the input is gone."""
    if await chunk_rows.count_chunks(services, row.id):
        return True
    source = await input_file(services, row)
    try:
        if source is None:
            raise BlobNotFound(row.input_file_id)
        spans = await split(services.blobs, source.blob_key, services.settings.batch.chunk_lines)
    except BlobNotFound:
        await fail(services, row, "input_file_missing", f"The input file {row.input_file_id} no longer exists.")
        return False
    chunks = [
        BatchChunk(
            batch_id=row.id,
            index=span.index,
            first_line=span.first_line,
            line_count=span.line_count,
            start_offset=span.start,
            end_offset=span.end,
            done=False,
            completed=0,
            failed=0,
        )
        for span in spans
    ]
    await chunk_rows.insert_chunks(services, chunks)
    return True


async def plan(services: Services, batch_id: str, generation: int) -> None:
    """The arq job `batch:<id>:plan:g<generation>`."""
    async with held(services, batch_id, keys.PLAN, generation) as lease:
        row = await store.load(services, batch_id) if lease is not None else None
        if row is None or row.status != BatchStatus.VALIDATING or not await _record_chunks(services, row):
            return
        chunks = await chunk_rows.all_chunks(services, batch_id)
        await checkpoints.seed_counts(services, batch_id, 0, 0)
        try:
            await store.transition(services, row, BatchStatus.IN_PROGRESS, total=sum(c.line_count for c in chunks))
        except Conflict:
            return  # cancelled (or expired) meanwhile: finalize takes it from here
    await steps.ensure_chunks(services, batch_id, [chunk.index for chunk in chunks])
