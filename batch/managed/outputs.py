"""A managed batch's output and error files: the chunks' part blobs concatenated in chunk order, streamed into one
blob each, and recorded as `batch_output` files of the batch's workspace.

File ids are derived from the batch id, so a finalize that dies after writing a file and runs again finds the file
and does not make a second one. A file row is inserted only after its bytes are complete, so a row always points
at a whole file. No failed lines, no error file (and no successful ones, no output file), as OpenAI does.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from sqlalchemy import select

from batch.managed.seal import ERRORS, OUTPUT, part_key
from portico.context import Services
from portico.db.batches import BatchChunk, BatchRow
from portico.db.models import File
from portico.ids import blob_key, now


def output_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


def _lines_of(chunk: BatchChunk, kind: str) -> int:
    return chunk.completed if kind == OUTPUT else chunk.failed


async def _exists(services: Services, file_id: str) -> bool:
    async with services.sessions() as session:
        return (await session.execute(select(File.id).where(File.id == file_id))).first() is not None


async def assemble(services: Services, row: BatchRow, chunks: list[BatchChunk], kind: str) -> str | None:
    """The id of the batch's `kind` file (OUTPUT or ERRORS), writing it if an earlier run did not."""
    lines = sum(_lines_of(chunk, kind) for chunk in chunks)
    if not lines:
        return None
    file_id = output_file_id(row.id, kind)
    if await _exists(services, file_id):
        return file_id
    key = blob_key("files", f"{row.workspace_id}/{file_id}")
    digest = hashlib.sha256()

    async def concatenated() -> AsyncIterator[bytes]:
        for chunk in chunks:
            if _lines_of(chunk, kind):
                async for piece in services.blobs.read(part_key(row.id, chunk.index, kind)):
                    digest.update(piece)
                    yield piece

    size = await services.blobs.write(key, concatenated())
    name = "output" if kind == OUTPUT else "error"
    async with services.sessions() as session, session.begin():
        session.add(
            File(
                id=file_id,
                workspace_id=row.workspace_id,
                filename=f"{row.id}_{name}.jsonl",
                purpose="batch_output",
                bytes=size,
                sha256=digest.hexdigest(),
                status="processed",
                line_count=lines,
                blob_key=key,
                created_at=now(),
            )
        )
    return file_id


async def assemble_both(services: Services, row: BatchRow, chunks: list[BatchChunk]) -> tuple[str | None, str | None]:
    return await assemble(services, row, chunks, OUTPUT), await assemble(services, row, chunks, ERRORS)
