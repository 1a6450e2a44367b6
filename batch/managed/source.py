"""The batch's input file, read by the workers (by id within the batch's workspace, like any read)."""

from __future__ import annotations

from sqlalchemy import select

from portico.context import Services
from portico.db.batches import BatchRow
from portico.db.models import File


async def input_file(services: Services, row: BatchRow) -> File | None:
    query = select(File).where(File.id == row.input_file_id, File.workspace_id == row.workspace_id)
    async with services.sessions() as session:
        return (await session.execute(query)).scalar_one_or_none()
