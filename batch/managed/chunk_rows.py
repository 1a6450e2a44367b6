"""The SQL side of a managed batch's chunks: recorded once by the planner, marked done once their results are
sealed into blobs. Counts summed over these rows are the batch's final request counts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update

from portico.context import Services
from portico.db.batches import BatchChunk


async def all_chunks(services: Services, batch_id: str) -> list[BatchChunk]:
    query = select(BatchChunk).where(BatchChunk.batch_id == batch_id).order_by(BatchChunk.index)
    async with services.sessions() as session:
        return list((await session.execute(query)).scalars())


async def get_chunk(services: Services, batch_id: str, index: int) -> BatchChunk | None:
    query = select(BatchChunk).where(BatchChunk.batch_id == batch_id, BatchChunk.index == index)
    async with services.sessions() as session:
        return (await session.execute(query)).scalar_one_or_none()


async def count_chunks(services: Services, batch_id: str) -> int:
    query = select(func.count()).select_from(BatchChunk).where(BatchChunk.batch_id == batch_id)
    async with services.sessions() as session:
        return int((await session.execute(query)).scalar_one())


async def insert_chunks(services: Services, chunks: Sequence[BatchChunk]) -> None:
    """All of a batch's chunks in one transaction: a batch has all its chunks or none."""
    async with services.sessions() as session, session.begin():
        session.add_all(chunks)


async def mark_done(services: Services, batch_id: str, index: int, completed: int, failed: int) -> None:
    statement = (
        update(BatchChunk)
        .where(BatchChunk.batch_id == batch_id, BatchChunk.index == index, BatchChunk.done.is_(False))
        .values(done=True, completed=completed, failed=failed)
    )
    async with services.sessions() as session, session.begin():
        await session.execute(statement)


async def unfinished(services: Services, batch_id: str) -> int:
    query = select(func.count()).where(BatchChunk.batch_id == batch_id, BatchChunk.done.is_(False))
    async with services.sessions() as session:
        return int((await session.execute(query)).scalar_one())


async def unsealed(services: Services, batch_id: str) -> list[int]:
    """The indices of the chunks not sealed yet, in order."""
    query = select(BatchChunk.index).where(BatchChunk.batch_id == batch_id, BatchChunk.done.is_(False))
    async with services.sessions() as session:
        return list((await session.execute(query.order_by(BatchChunk.index))).scalars())


async def sealed_counts(services: Services, batch_id: str) -> tuple[int, int]:
    """(completed, failed) over the chunks sealed so far."""
    query = select(func.coalesce(func.sum(BatchChunk.completed), 0), func.coalesce(func.sum(BatchChunk.failed), 0))
    async with services.sessions() as session:
        completed, failed = (await session.execute(query.where(BatchChunk.batch_id == batch_id))).one()
    return int(completed), int(failed)
