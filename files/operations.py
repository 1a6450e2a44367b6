"""The Files API: the spec's five operations, plus the MCP-side ways to bring bytes in and read text out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select
from starlette.requests import Request

from files import store
from files.models import (
    CreateFileFromTextInput,
    DeletedFile,
    FileIdInput,
    FileList,
    FileObject,
    FileText,
    ListFilesInput,
    ReadTextInput,
    StagedUpload,
)
from files.multipart import PartStart, field_text, multipart_events, part_bytes
from files.staging import check_purpose, clean_filename, stage
from portico.context import CallContext
from portico.db.models import File
from portico.errors import InvalidRequest, PayloadTooLarge
from portico.idempotency import idempotent
from portico.pagination import cursor_page, cursor_rows
from portico.registry import operation
from portico.streaming import StreamedContent

DATA_SCOPE = "completions.write"
# Form fields and multipart framing on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


async def read_multipart_upload(request: Request, ctx: CallContext) -> StagedUpload:
    """Stream the `file` part to the blob store as it arrives; `purpose` may come before or after it."""
    cap = ctx.settings.upload_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The upload exceeds the limit of {cap} bytes.", param="file", code="too_large")
    events = multipart_events(request.stream(), request.headers.get("content-type", ""))
    purpose: str | None = None
    staged: StagedUpload | None = None
    try:
        async for event in events:
            if not isinstance(event, PartStart):
                continue
            if event.name == "purpose":
                purpose = check_purpose(await field_text(events, "purpose"))
            elif event.name == "file" and staged is None:
                staged = await stage(
                    ctx.services.blobs,
                    ctx.workspace_id,
                    part_bytes(events),
                    filename=clean_filename(event.filename),
                    purpose=purpose,
                    max_bytes=cap,
                )
            else:
                raise InvalidRequest(f"Unexpected form field '{event.name}'.", param=event.name, code="unknown_field")
        if staged is None:
            raise InvalidRequest("No file: send the bytes in a multipart part named 'file'.", param="file")
        return staged.model_copy(update={"purpose": check_purpose(purpose)})
    except BaseException:
        if staged is not None:
            await ctx.services.blobs.delete(staged.blob_key)
        raise


@operation(
    name="files_upload",
    summary="Upload a file (multipart: 'file' and 'purpose'); batch and fine-tune JSONL is validated line by line.",
    toolset="files",
    input_model=StagedUpload,
    output_model=FileObject,
    scope=DATA_SCOPE,
    method="POST",
    path="/files",
    mcp=False,
    rest_reader=read_multipart_upload,
    mcp_alternatives=("files_create_from_text", "files_create_upload_url"),
)
async def upload(ctx: CallContext, staged: StagedUpload) -> FileObject:
    # The bytes are already staged when the key can be checked (the body is the upload): a replay answers with the
    # first file and drops this copy.
    payload = {"sha256": staged.sha256, "bytes": staged.bytes, "filename": staged.filename, "purpose": staged.purpose}
    try:
        result = await idempotent(ctx, "files_upload", payload, FileObject, lambda: store.record(ctx, staged))
    except BaseException:
        await ctx.services.blobs.delete(staged.blob_key)
        raise
    if result.id != staged.file_id:
        await ctx.services.blobs.delete(staged.blob_key)
    return result


@operation(
    name="files_list",
    summary="List files in this workspace, newest first; filter by purpose; page with 'after' = last_id.",
    toolset="files",
    input_model=ListFilesInput,
    output_model=FileList,
    scope=DATA_SCOPE,
    method="GET",
    path="/files",
    read_only=True,
    idempotent=True,
)
async def list_files(ctx: CallContext, args: ListFilesInput) -> FileList:
    query = select(File).where(File.workspace_id == ctx.workspace_id)
    if args.purpose:
        query = query.where(File.purpose == args.purpose)
    async with ctx.services.sessions() as session:
        rows, has_more = await cursor_rows(session, query, File.created_at, File.id, args)
    return FileList.model_validate(cursor_page([store.to_wire(r) for r in rows], has_more))


@operation(
    name="files_retrieve",
    summary="Get one file's metadata: name, size in bytes, purpose, status, created_at.",
    toolset="files",
    input_model=FileIdInput,
    output_model=FileObject,
    scope=DATA_SCOPE,
    method="GET",
    path="/files/{file_id}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://files/{file_id}",
)
async def retrieve(ctx: CallContext, args: FileIdInput) -> FileObject:
    return store.to_wire(await store.get_file(ctx, args.file_id))


@operation(
    name="files_delete",
    summary="Delete a file and its stored bytes. Irreversible.",
    toolset="files",
    input_model=FileIdInput,
    output_model=DeletedFile,
    scope=DATA_SCOPE,
    method="DELETE",
    path="/files/{file_id}",
    destructive=True,
    idempotent=True,
)
async def delete_file(ctx: CallContext, args: FileIdInput) -> DeletedFile:
    await store.remove(ctx, args.file_id)
    return DeletedFile(id=args.file_id, deleted=True)


@operation(
    name="files_download",
    summary="Download a file's raw bytes.",
    toolset="files",
    input_model=FileIdInput,
    output_model=None,
    scope=DATA_SCOPE,
    method="GET",
    path="/files/{file_id}/content",
    read_only=True,
    idempotent=True,
    mcp=False,
    mcp_alternatives=("files_read_text",),
)
async def download(ctx: CallContext, args: FileIdInput) -> StreamedContent:
    row = await store.get_file(ctx, args.file_id)
    return StreamedContent(
        chunks=ctx.services.blobs.read(row.blob_key),
        media_type="application/octet-stream",
        length=row.bytes,
        filename=row.filename,
    )


@operation(
    name="files_read_text",
    summary="Read a file's content as UTF-8 text, cut at max_bytes (and the server cap); says if truncated.",
    toolset="files",
    input_model=ReadTextInput,
    output_model=FileText,
    scope=DATA_SCOPE,
    read_only=True,
    idempotent=True,
    resource_uri="portico://files/{file_id}/content",
    resource_mime_type="text/plain",
)
async def read_text(ctx: CallContext, args: ReadTextInput) -> FileText:
    row = await store.get_file(ctx, args.file_id)
    limit = min(args.max_bytes or ctx.settings.mcp_text_max_bytes, ctx.settings.mcp_text_max_bytes)
    data = await ctx.services.blobs.read_prefix(row.blob_key, limit)
    return FileText(
        file_id=row.id,
        text=data.decode("utf-8", "replace"),
        bytes_returned=len(data),
        total_bytes=row.bytes,
        truncated=row.bytes > len(data),
    )


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@operation(
    name="files_create_from_text",
    summary="Create a file from inline text (e.g. a batch JSONL); for large files use files_create_upload_url.",
    toolset="files",
    input_model=CreateFileFromTextInput,
    output_model=FileObject,
    scope=DATA_SCOPE,
)
async def create_from_text(ctx: CallContext, args: CreateFileFromTextInput) -> FileObject:
    staged = await stage(
        ctx.services.blobs,
        ctx.workspace_id,
        _one_chunk(args.text.encode()),
        filename=clean_filename(args.filename),
        purpose=args.purpose.value,
        max_bytes=ctx.settings.upload_max_bytes,
    )
    return await store.record(ctx, staged)
