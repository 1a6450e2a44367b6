"""File records: reading them within a workspace, recording staged uploads, deleting rows with their bytes."""

from __future__ import annotations

from sqlalchemy import delete, select

from files.models import FileObject, StagedUpload
from files.staging import check_purpose, validate_staged
from portico.context import CallContext
from portico.db.models import File
from portico.errors import NotFound
from portico.ids import now


def to_wire(row: File) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,
        status_details=row.status_details,
    )


async def get_file(ctx: CallContext, file_id: str, *, param: str = "file_id") -> File:
    """The file `file_id` of the caller's workspace; another workspace's id answers 404 like a missing one."""
    async with ctx.services.sessions() as session:
        row = (
            await session.execute(select(File).where(File.id == file_id, File.workspace_id == ctx.workspace_id))
        ).scalar_one_or_none()
    if row is None:
        raise NotFound.object("file", file_id, param=param)
    return row


async def record(ctx: CallContext, staged: StagedUpload) -> FileObject:
    """Turn staged bytes into a file row. If anything is refused, the staged blob is removed: no orphan bytes."""
    blobs = ctx.services.blobs
    try:
        check_purpose(staged.purpose)
        staged = await validate_staged(blobs, staged)
        row = File(
            id=staged.file_id,
            workspace_id=ctx.workspace_id,
            filename=staged.filename,
            purpose=staged.purpose,
            bytes=staged.bytes,
            sha256=staged.sha256,
            status="processed",
            line_count=staged.line_count,
            blob_key=staged.blob_key,
            created_at=now(),
        )
        async with ctx.services.sessions() as session, session.begin():
            session.add(row)
    except BaseException:
        await blobs.delete(staged.blob_key)
        raise
    return to_wire(row)


async def remove(ctx: CallContext, file_id: str) -> None:
    """Delete the row first, then the bytes: a crash between the two leaves an unreferenced blob, never a row
    pointing at nothing."""
    row = await get_file(ctx, file_id)
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(delete(File).where(File.id == row.id, File.workspace_id == ctx.workspace_id))
    await ctx.services.blobs.delete(row.blob_key)
