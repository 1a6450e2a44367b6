"""Sealing a chunk: its checkpointed results become two part blobs (output lines, error lines), THEN its SQL row is
marked done with its counts, THEN its checkpoints are deleted. A crash anywhere in between leaves the checkpoints
in place, so the next run seals again (overwriting the parts with the same lines).

A part is written only if it streams exactly the expected number of lines; otherwise the write is abandoned, which
every blob store guarantees leaves the previous object untouched. That guards the one dangerous race: a runner
that lost its lease sealing while its successor deletes the same checkpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from batch.managed import checkpoints, chunk_rows, keys, results
from batch.managed.lua import redis_of
from batch.managed.records import parse, records
from portico.context import Services
from portico.db.batches import BatchChunk
from portico.errors import Conflict
from portico.ids import blob_key

OUTPUT = "output"
ERRORS = "errors"


def part_key(batch_id: str, index: int, kind: str) -> str:
    return blob_key("batch-parts", f"{batch_id}/{index:06d}.{kind}.jsonl")


async def _exactly(lines: AsyncIterable[bytes], expected: int, what: str) -> AsyncIterator[bytes]:
    count = 0
    async for line in lines:
        count += 1
        yield line
    if count != expected:
        raise Conflict(f"{what}: expected {expected} lines, found {count}; checkpoints changed meanwhile.")


async def _write_part(services: Services, key: str, lines: AsyncIterable[bytes], expected: int) -> None:
    if expected:
        await services.blobs.write(key, _exactly(lines, expected, key))


async def _finish(services: Services, chunk: BatchChunk, completed: int, failed: int) -> None:
    await chunk_rows.mark_done(services, chunk.batch_id, chunk.index, completed, failed)
    batch_id, index = chunk.batch_id, chunk.index
    await redis_of(services).delete(keys.succeeded_lines(batch_id, index), keys.failed_lines(batch_id, index))


async def seal_finished(services: Services, chunk: BatchChunk) -> bool:
    """Seal a chunk whose every line has a result; False (nothing done) if some line has none."""
    batch_id, index = chunk.batch_id, chunk.index
    completed, failed = await checkpoints.sizes(services, batch_id, index)
    if completed + failed != chunk.line_count:
        return False
    output = checkpoints.results(services, keys.succeeded_lines(batch_id, index))
    await _write_part(services, part_key(batch_id, index, OUTPUT), output, completed)
    errors = checkpoints.results(services, keys.failed_lines(batch_id, index))
    await _write_part(services, part_key(batch_id, index, ERRORS), errors, failed)
    await _finish(services, chunk, completed, failed)
    return True


async def seal_unfinished(services: Services, chunk: BatchChunk, source_key: str, *, expire_rest: bool) -> None:
    """Seal a chunk that will not run any more (the batch was cancelled or expired; no runner holds it): its
    finished lines are kept and, with `expire_rest`, each line that never ran goes to the error part as
    `batch_expired`, as OpenAI reports lines left when the window closes."""
    batch_id, index = chunk.batch_id, chunk.index
    completed, failed = await checkpoints.sizes(services, batch_id, index)
    output = checkpoints.results(services, keys.succeeded_lines(batch_id, index))
    await _write_part(services, part_key(batch_id, index, OUTPUT), output, completed)
    errors = checkpoints.results(services, keys.failed_lines(batch_id, index))
    if expire_rest:
        finished = await checkpoints.finished_lines(services, batch_id, index)
        errors = _then(errors, _expired_lines(services, source_key, chunk, finished))
        failed = chunk.line_count - completed
    await _write_part(services, part_key(batch_id, index, ERRORS), errors, failed)
    await _finish(services, chunk, completed, failed)


async def _then(first: AsyncIterable[bytes], second: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    async for line in first:
        yield line
    async for line in second:
        yield line


async def _expired_lines(
    services: Services, source_key: str, chunk: BatchChunk, finished: set[int]
) -> AsyncIterator[bytes]:
    async for record in records(services.blobs, source_key, chunk):
        if record.line_no not in finished:
            yield results.expired(parse(record).custom_id)


async def drop_parts(services: Services, chunks: list[BatchChunk]) -> None:
    for chunk in chunks:
        for kind, count in ((OUTPUT, chunk.completed), (ERRORS, chunk.failed)):
            if count:
                await services.blobs.delete(part_key(chunk.batch_id, chunk.index, kind))
