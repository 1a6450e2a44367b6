"""When a native batch is looked at next: the schedule lives in SQL (`next_poll_at`, `poll_count`), so pollers
survive restarts, a lost Redis and jobs that run for days (DESIGN.md §3: cron-driven, never endless retries).

The cron (`batch.native.jobs`) enqueues one poll per due batch, with the job id `batch:<id>:poll:<poll_count>`:
until that poll has run and moved `poll_count` on, a second tick enqueues the same id and arq drops it. A finished
batch is never due again. Polls back off as a job ages, one poll per twentieth of its age, between the configured
`poll_seconds` and `MAX_INTERVAL`, so a job that runs for a day costs a few hundred calls, not one per second.
"""

from __future__ import annotations

from sqlalchemy import or_, select, update

from batch import store
from batch.states import BatchStatus
from portico.context import Services
from portico.db.batches import BatchRow
from portico.ids import now

MAX_INTERVAL = 600
AGE_FRACTION = 20
DUE_PER_TICK = 500


def interval(services: Services, row: BatchRow) -> int:
    floor = services.settings.batch.poll_seconds
    # A cancelling batch waits on the provider to confirm: look again soon.
    if row.status == BatchStatus.CANCELLING:
        return floor
    age = max(now() - row.created_at, 0)
    return max(floor, min(age // AGE_FRACTION, MAX_INTERVAL))


async def reschedule(services: Services, row: BatchRow) -> None:
    """After a step: the next poll time (none once finished) and the next poll slot. Not announced on the job bus:
    nothing a subscriber sees changed."""
    finished = BatchStatus(row.status) in store.TERMINAL
    next_poll = None if finished else now() + interval(services, row)
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(BatchRow)
            .where(BatchRow.id == row.id)
            .values(next_poll_at=next_poll, poll_count=BatchRow.poll_count + 1)
        )
    row.next_poll_at, row.poll_count = next_poll, row.poll_count + 1


async def poll_at(services: Services, batch_id: str, moment: int) -> None:
    async with services.sessions() as session, session.begin():
        await session.execute(update(BatchRow).where(BatchRow.id == batch_id).values(next_poll_at=moment))


async def due(services: Services) -> list[tuple[str, int]]:
    """(batch id, poll slot) of the unfinished native batches whose poll time has come. A NULL poll time counts as
    due: a batch whose creator died before scheduling it must still start."""
    active = [status.value for status in store.ACTIVE]
    query = (
        select(BatchRow.id, BatchRow.poll_count)
        .where(
            BatchRow.mode == "native",
            BatchRow.status.in_(active),
            or_(BatchRow.next_poll_at.is_(None), BatchRow.next_poll_at <= now()),
        )
        .order_by(BatchRow.next_poll_at)
        .limit(DUE_PER_TICK)
    )
    async with services.sessions() as session:
        return [(batch_id, count) for batch_id, count in (await session.execute(query)).all()]
