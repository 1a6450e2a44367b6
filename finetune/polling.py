"""When a fine-tuning job is looked at next: the schedule lives in SQL (`next_poll_at`, `poll_count`), so pollers
survive restarts, a lost Redis and jobs that run for days (DESIGN.md §3: cron-driven, never endless retries).

The cron (`finetune.jobs`) enqueues one poll per due job, with the job id `ftjob:<id>:poll:<poll_count>`: until that
poll has run and moved `poll_count` on, a second tick enqueues the same id and arq drops it. A finished job is never
due again. Polls back off as a job ages (one poll per twentieth of its age, between `Settings.batch.poll_seconds`
and `MAX_INTERVAL`), the rule native batches follow (`batch.native.polling`).
"""

from __future__ import annotations

from sqlalchemy import or_, select, update

from batch.native.polling import AGE_FRACTION, DUE_PER_TICK, MAX_INTERVAL
from finetune import store
from finetune.states import FineTuneStatus
from portico.context import Services
from portico.db.fine_tuning import FineTuningJobRow
from portico.ids import now


def interval(services: Services, row: FineTuningJobRow) -> int:
    floor = services.settings.batch.poll_seconds
    age = max(now() - row.created_at, 0)
    return max(floor, min(age // AGE_FRACTION, MAX_INTERVAL))


async def reschedule(services: Services, row: FineTuningJobRow) -> None:
    """After a step: the next poll time (none once finished) and the next poll slot. Not announced: nothing a
    subscriber sees changed."""
    finished = FineTuneStatus(row.status) in store.TERMINAL
    next_poll = None if finished else now() + interval(services, row)
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(FineTuningJobRow)
            .where(FineTuningJobRow.id == row.id)
            .values(next_poll_at=next_poll, poll_count=FineTuningJobRow.poll_count + 1)
        )
    row.next_poll_at, row.poll_count = next_poll, row.poll_count + 1


async def due(services: Services) -> list[tuple[str, int]]:
    """(job id, poll slot) of unfinished jobs whose poll time has come; a NULL time counts as due, so a job whose
    creator died before queuing its first step still starts."""
    active = [status.value for status in store.ACTIVE]
    query = (
        select(FineTuningJobRow.id, FineTuningJobRow.poll_count)
        .where(
            FineTuningJobRow.status.in_(active),
            or_(FineTuningJobRow.next_poll_at.is_(None), FineTuningJobRow.next_poll_at <= now()),
        )
        .order_by(FineTuningJobRow.next_poll_at)
        .limit(DUE_PER_TICK)
    )
    async with services.sessions() as session:
        return [(job_id, count) for job_id, count in (await session.execute(query)).all()]
