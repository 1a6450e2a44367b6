"""A chunk's run: every line of the chunk not yet checkpointed, through the gateway, then the seal.

Lines are read from the chunk's byte range as slots free up (at most `concurrency` read ahead), and each line task
takes the process-wide limiter of the batch's route for each attempt. Inside the limiter it checks that it may
still send (lease valid, no stop), sends, and for a final answer checkpoints the result before letting go; a
429/5xx answer lets go, waits (Retry-After, else backoff), and tries again up to `max_attempts`. So at any moment a
process has at most `concurrency` requests per route that were sent and not yet checkpointed: what a SIGKILL costs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from batch import store
from batch.managed import checkpoints, chunk_rows, keys, results, steps
from batch.managed.calls import Answer, Pinned, backoff, call_line, pinned
from batch.managed.commits import Committer, committer
from batch.managed.lease import Lease, held
from batch.managed.limits import limiter, route_key
from batch.managed.records import LineRequest, Record, parse, records
from batch.managed.seal import seal_finished
from batch.managed.source import input_file
from batch.managed.stop import StopWatch
from batch.models import RequestCounts
from batch.states import BatchStatus
from portico.context import CallContext, Services
from portico.db.batches import BatchChunk, BatchRow


@dataclass
class ChunkRun:
    services: Services
    ctx: CallContext
    row: BatchRow
    chunk: BatchChunk
    source_key: str
    route: Pinned
    lease: Lease
    stop: StopWatch
    limiter: asyncio.Semaphore
    committer: Committer

    def may_send(self) -> bool:
        return self.lease.valid() and not self.stop.stopped

    async def settle(self, request: LineRequest) -> None:
        """Run one line to a final answer and checkpoint it (or give up quietly when told to stop)."""
        attempts = self.services.settings.batch.max_attempts
        for attempt in range(1, attempts + 1):
            async with self.limiter:
                if not self.may_send():
                    return
                answer = await self._send(request)
                if not answer.retryable or attempt == attempts:
                    await self.keep(request, answer)
                    return
            await asyncio.sleep(backoff(attempt, answer.retry_after))

    async def _send(self, request: LineRequest) -> Answer:
        if request.invalid is not None:
            return Answer(error=request.invalid)
        return await call_line(self.ctx, self.row.id, self.row.endpoint, self.route, request.custom_id, request.body)

    async def keep(self, request: LineRequest, answer: Answer) -> None:
        ok = answer.error is None
        if answer.error is None:
            line = results.succeeded(request.custom_id, answer.body or {})
        else:
            line = results.failed(request.custom_id, answer.error)
        announce = await self.committer.record(self.row.id, self.chunk.index, request.line_no, ok, line)
        if announce is not None:
            completed, failed = announce
            live = RequestCounts(total=self.row.total, completed=completed, failed=failed)
            await store.announce(self.services, self.row, live)

    async def run_lines(self) -> None:
        finished = await checkpoints.finished_lines(self.services, self.row.id, self.chunk.index)
        ahead = asyncio.Semaphore(self.services.settings.batch.concurrency)
        watcher = asyncio.create_task(self.stop.watch(), name=f"stop watch {self.row.id}")
        try:
            lines = records(self.services.blobs, self.source_key, self.chunk)
            async with contextlib.aclosing(lines) as lines, asyncio.TaskGroup() as group:
                async for record in lines:
                    if record.line_no in finished:
                        continue
                    await ahead.acquire()
                    if not self.may_send():
                        ahead.release()
                        break
                    group.create_task(self._line(record, ahead))
        finally:
            watcher.cancel()

    async def _line(self, record: Record, ahead: asyncio.Semaphore) -> None:
        try:
            await self.settle(parse(record))
        finally:
            ahead.release()


async def _prepare(services: Services, batch_id: str, index: int, lease: Lease) -> ChunkRun | None:
    """The run's inputs, or None when there is nothing to do (stale job, chunk sealed, batch not running)."""
    row = await store.load(services, batch_id)
    chunk = await chunk_rows.get_chunk(services, batch_id, index)
    if row is None or chunk is None or chunk.done or row.status != BatchStatus.IN_PROGRESS:
        return None
    stop = StopWatch(services, batch_id, row.expires_at)
    source = await input_file(services, row)
    if await stop.refresh() or source is None:
        return None
    ctx = store.acting_context(services, row)
    route = await pinned(ctx, store.open_route(services, row))
    shared = limiter(route_key(row.workspace_id, route.route), services.settings.batch.concurrency)
    return ChunkRun(services, ctx, row, chunk, source.blob_key, route, lease, stop, shared, committer(services))


async def run_chunk(services: Services, batch_id: str, index: int, generation: int) -> None:
    """The arq job `batch:<id>:chunk:<index>:g<generation>`."""
    sealed = False
    async with held(services, batch_id, keys.chunk_step(index), generation) as lease:
        if lease is None:
            return
        run = await _prepare(services, batch_id, index, lease)
        if run is None:
            return
        await run.run_lines()
        if run.may_send():
            sealed = await seal_finished(services, run.chunk)
    if sealed:
        # Top up the queue with the next chunks (or finalize, if this was the last one).
        await steps.ensure_chunks(services, batch_id, await chunk_rows.unsealed(services, batch_id))
