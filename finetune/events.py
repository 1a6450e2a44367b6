"""A job's events and checkpoints: recorded once each, listed newest first.

Drivers describe what they saw as drafts (`EventDraft`, `CheckpointDraft`) carrying a key that names what the event
is about — the provider's own event id (OpenAI), a state or stage reached, a metric reported (Bedrock, Vertex). The
key is unique per job in SQL and inserts skip a key already there (`ON CONFLICT DO NOTHING`, which SQLite and
PostgreSQL both speak), so a poll repeated after a crash, or by the next Portico after a restart, adds nothing twice.
Drafts are inserted in the order given, oldest first: ids are time-ordered, so lists sort by (created_at, id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from finetune.models import FineTuningCheckpoint, FineTuningEvent
from portico.context import Services
from portico.db.fine_tuning import FineTuningCheckpointRow, FineTuningEventRow
from portico.ids import new_id
from portico.pagination import CursorParams, cursor_rows

INSERTS: dict[str, Callable[[Any], Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class EventDraft:
    key: str
    created_at: int
    message: str
    level: str = "info"
    type: str = "message"
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckpointDraft:
    step_number: int
    created_at: int
    fine_tuned_model_checkpoint: str
    metrics: dict[str, float] = field(default_factory=dict)


def _insert_ignoring_duplicates(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> Insert:
    dialect = session.get_bind().dialect.name
    statement = INSERTS[dialect](table).values(rows)
    return statement.on_conflict_do_nothing()  # type: ignore[no-any-return]


async def record_events(services: Services, job_id: str, drafts: Sequence[EventDraft]) -> int:
    """Insert the drafts whose key is new for this job; returns how many were."""
    if not drafts:
        return 0
    async with services.sessions() as session, session.begin():
        known = set(
            (
                await session.execute(
                    select(FineTuningEventRow.dedupe_key).where(
                        FineTuningEventRow.job_id == job_id,
                        FineTuningEventRow.dedupe_key.in_([draft.key for draft in drafts]),
                    )
                )
            ).scalars()
        )
        fresh = [draft for draft in drafts if draft.key not in known]
        rows = [
            {
                "id": new_id("ftevent-"),
                "job_id": job_id,
                "dedupe_key": draft.key[:255],
                "created_at": draft.created_at,
                "level": draft.level,
                "message": draft.message,
                "type": draft.type,
                "data": draft.data,
            }
            for draft in fresh
        ]
        # One at a time: ids are minted in this order, so events of one second keep it.
        for row in rows:
            await session.execute(_insert_ignoring_duplicates(session, FineTuningEventRow, [row]))
    return len(rows)


async def has_event(services: Services, job_id: str, key: str) -> bool:
    query = select(FineTuningEventRow.id).where(
        FineTuningEventRow.job_id == job_id, FineTuningEventRow.dedupe_key == key
    )
    async with services.sessions() as session:
        return (await session.execute(query.limit(1))).first() is not None


async def record_checkpoints(services: Services, job_id: str, drafts: Sequence[CheckpointDraft]) -> None:
    if not drafts:
        return
    rows = [
        {
            "id": new_id("ftckpt-"),
            "job_id": job_id,
            "created_at": draft.created_at,
            "step_number": draft.step_number,
            "fine_tuned_model_checkpoint": draft.fine_tuned_model_checkpoint,
            "metrics": draft.metrics,
        }
        for draft in sorted(drafts, key=lambda draft: draft.step_number)
    ]
    async with services.sessions() as session, session.begin():
        for row in rows:
            await session.execute(_insert_ignoring_duplicates(session, FineTuningCheckpointRow, [row]))


def _params(after: str | None, limit: int) -> CursorParams:
    return CursorParams(after=after, limit=limit, order="desc")


async def list_events(
    services: Services, job_id: str, after: str | None, limit: int
) -> tuple[list[FineTuningEvent], bool]:
    query = select(FineTuningEventRow).where(FineTuningEventRow.job_id == job_id)
    async with services.sessions() as session:
        rows, more = await cursor_rows(
            session, query, FineTuningEventRow.created_at, FineTuningEventRow.id, _params(after, limit)
        )
    events = [
        FineTuningEvent(
            id=row.id,
            created_at=row.created_at,
            level=row.level,
            message=row.message,
            type=row.type,
            data=row.data,
        )
        for row in rows
    ]
    return events, more


async def list_checkpoints(
    services: Services, job_id: str, after: str | None, limit: int
) -> tuple[list[FineTuningCheckpoint], bool]:
    query = select(FineTuningCheckpointRow).where(FineTuningCheckpointRow.job_id == job_id)
    async with services.sessions() as session:
        rows, more = await cursor_rows(
            session, query, FineTuningCheckpointRow.created_at, FineTuningCheckpointRow.id, _params(after, limit)
        )
    checkpoints = [
        FineTuningCheckpoint(
            id=row.id,
            created_at=row.created_at,
            fine_tuned_model_checkpoint=row.fine_tuned_model_checkpoint,
            fine_tuning_job_id=job_id,
            metrics=row.metrics or {},
            step_number=row.step_number,
        )
        for row in rows
    ]
    return checkpoints, more
