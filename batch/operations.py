"""The Batch API: the spec's five operations. Creation is checked whole before anything is stored
(`batch.create`); the work itself runs on the arq workers (`batch.managed`, `batch.native`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select
from starlette.requests import Request

from batch import store
from batch.create import create_batch
from batch.models import BatchIdInput, BatchList, BatchObject, CreateBatchInput, ListBatchesInput
from batch.modes import modes
from batch.states import BatchStatus
from files.store import get_file
from gateway.route import Route
from portico.context import CallContext
from portico.db.batches import BatchRow
from portico.dispatch import parse_arguments
from portico.errors import Conflict
from portico.idempotency import idempotent
from portico.json_body import json_object
from portico.pagination import cursor_page, cursor_rows
from portico.registry import REGISTRY, operation
from portico.streaming import StreamedContent

DATA_SCOPE = "completions.write"


async def read_create(request: Request, _: CallContext) -> CreateBatchInput:
    """The JSON body, plus Portkey's routing headers (used when the body has no `portkey_options`)."""
    arguments = await json_object(request)
    arguments["route"] = Route.from_headers(request.headers).model_dump(exclude_none=True)
    operation_ = REGISTRY.get("batches_create")
    assert operation_ is not None
    parsed = parse_arguments(operation_, arguments)
    assert isinstance(parsed, CreateBatchInput)
    return parsed


async def wire(ctx: CallContext, row: BatchRow) -> BatchObject:
    live = None if row.status in store.TERMINAL else await modes()[row.mode].live_counts(ctx.services, row)
    return store.to_wire(row, live)


# A batch moves through at most a few states on its own (validating, in_progress, finalizing): a cancel that keeps
# losing the race that many times is answered 409.
CANCEL_ATTEMPTS = 5


@operation(
    name="batches_create",
    summary="Run a batch of requests from a 'batch' JSONL file: '24h' uses the provider's batch API, 'immediate' "
    "has Portico run every line. Route with portkey_options or the route argument.",
    toolset="batches",
    input_model=CreateBatchInput,
    output_model=BatchObject,
    scope=DATA_SCOPE,
    method="POST",
    path="/batches",
    rest_reader=read_create,
)
async def create(ctx: CallContext, request: CreateBatchInput) -> BatchObject:
    async def run() -> BatchObject:
        return store.to_wire(await create_batch(ctx, request))

    return await idempotent(ctx, "batches_create", request.model_dump(mode="json"), BatchObject, run)


@operation(
    name="batches_list",
    summary="List batches in this workspace, newest first; page with 'after' = last_id.",
    toolset="batches",
    input_model=ListBatchesInput,
    output_model=BatchList,
    scope=DATA_SCOPE,
    method="GET",
    path="/batches",
    read_only=True,
    idempotent=True,
)
async def list_batches(ctx: CallContext, args: ListBatchesInput) -> BatchList:
    query = select(BatchRow).where(BatchRow.workspace_id == ctx.workspace_id)
    async with ctx.services.sessions() as session:
        rows, has_more = await cursor_rows(session, query, BatchRow.created_at, BatchRow.id, args)
    return BatchList.model_validate(cursor_page([await wire(ctx, row) for row in rows], has_more))


@operation(
    name="batches_retrieve",
    summary="Get one batch: status (and the provider's raw status), request_counts, output and error file ids.",
    toolset="batches",
    input_model=BatchIdInput,
    output_model=BatchObject,
    scope=DATA_SCOPE,
    method="GET",
    path="/batches/{batch_id}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://batches/{batch_id}",
)
async def retrieve(ctx: CallContext, args: BatchIdInput) -> BatchObject:
    return await wire(ctx, await store.get_batch(ctx, args.batch_id))


@operation(
    name="batches_cancel",
    summary="Cancel a batch: it is 'cancelling' until running requests settle, then 'cancelled'; finished lines "
    "are kept in the output file.",
    toolset="batches",
    input_model=BatchIdInput,
    output_model=BatchObject,
    scope=DATA_SCOPE,
    method="POST",
    path="/batches/{batch_id}/cancel",
    destructive=True,
    idempotent=True,
)
async def cancel(ctx: CallContext, args: BatchIdInput) -> BatchObject:
    # A worker may move the batch between our read and our write (validating -> in_progress as it starts): the
    # cancel then decides again on the state it finds, rather than answering "changed state meanwhile".
    for _ in range(CANCEL_ATTEMPTS):
        row = await store.get_batch(ctx, args.batch_id)
        if row.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            return await wire(ctx, row)
        if row.status in store.TERMINAL:
            raise Conflict(
                f"Batch {row.id} is already {row.status}; only a running batch can be cancelled.",
                param="batch_id",
                code="batch_finished",
            )
        try:
            row = await store.transition(ctx.services, row, BatchStatus.CANCELLING)
        except Conflict as error:
            if error.code != store.CONCURRENT_UPDATE:
                raise
            continue
        await modes()[row.mode].cancel(ctx.services, row)
        return await wire(ctx, row)
    raise Conflict(
        f"Batch {args.batch_id} kept changing state; try the cancel again.", param="batch_id", code="concurrent_update"
    )


async def _concatenated(ctx: CallContext, file_ids: list[str]) -> AsyncIterator[bytes]:
    for file_id in file_ids:
        row = await get_file(ctx, file_id)
        async for chunk in ctx.services.blobs.read(row.blob_key):
            yield chunk


@operation(
    name="batches_output",
    summary="Stream a finished batch's result lines (JSONL): the output file's lines, then the error file's.",
    toolset="batches",
    input_model=BatchIdInput,
    output_model=None,
    scope=DATA_SCOPE,
    method="GET",
    path="/batches/{batch_id}/output",
    read_only=True,
    idempotent=True,
    mcp=False,
    mcp_alternatives=("files_read_text",),
)
async def output(ctx: CallContext, args: BatchIdInput) -> StreamedContent:
    row = await store.get_batch(ctx, args.batch_id)
    file_ids = [f for f in (row.output_file_id, row.error_file_id) if f]
    if row.status not in store.TERMINAL or not file_ids:
        raise Conflict(
            f"Batch {row.id} is {row.status} and has no output yet; wait for a final status.",
            param="batch_id",
            code="batch_not_finished",
        )
    return StreamedContent(chunks=_concatenated(ctx, file_ids), media_type="application/octet-stream")
