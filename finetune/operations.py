"""The fine-tuning API: the spec's six operations. Creation is checked whole before anything is stored
(`finetune.create`); the jobs run on the providers, followed by the arq workers (`finetune.steps`), and cancel stops
the provider's job in the call (`finetune.cancel`). Jobs and their events are MCP resources, updated on the bus."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request

from finetune import events, store
from finetune.cancel import cancel_job
from finetune.create import create_job
from finetune.drivers.registry import DRIVERS, adapter_of
from finetune.models import (
    CreateFineTuningJobInput,
    FineTuningCheckpointList,
    FineTuningEventList,
    FineTuningJobList,
    FineTuningJobObject,
    JobIdInput,
    ListCheckpointsInput,
    ListEventsInput,
    ListJobsInput,
)
from gateway.route import Route
from portico.context import CallContext
from portico.db.fine_tuning import FineTuningJobRow
from portico.dispatch import parse_arguments
from portico.idempotency import idempotent
from portico.json_body import json_object
from portico.pagination import CursorParams, cursor_page, cursor_rows
from portico.registry import REGISTRY, operation

DATA_SCOPE = "completions.write"
TOOLSET = "finetune"


async def read_create(request: Request, _: CallContext) -> CreateFineTuningJobInput:
    """The JSON body, plus Portkey's routing headers (used when the body has no `portkey_options`)."""
    arguments = await json_object(request)
    arguments["route"] = Route.from_headers(request.headers).model_dump(exclude_none=True)
    operation_ = REGISTRY.get("fine_tuning_jobs_create")
    assert operation_ is not None
    parsed = parse_arguments(operation_, arguments)
    assert isinstance(parsed, CreateFineTuningJobInput)
    return parsed


@operation(
    name="fine_tuning_jobs_create",
    summary="Fine-tune a base model on a 'fine-tune' JSONL file, on OpenAI, Bedrock or Vertex (the virtual key's "
    "provider). Training lines are converted for the target; Bedrock needs role_arn. Route with portkey_options.",
    toolset=TOOLSET,
    input_model=CreateFineTuningJobInput,
    output_model=FineTuningJobObject,
    scope=DATA_SCOPE,
    method="POST",
    path="/fine_tuning/jobs",
    rest_reader=read_create,
)
async def create(ctx: CallContext, request: CreateFineTuningJobInput) -> FineTuningJobObject:
    async def run() -> FineTuningJobObject:
        return store.to_wire(await create_job(ctx, request))

    payload = request.model_dump(mode="json")
    return await idempotent(ctx, "fine_tuning_jobs_create", payload, FineTuningJobObject, run)


@operation(
    name="fine_tuning_jobs_list",
    summary="List fine-tuning jobs in this workspace, newest first; page with 'after' = the last job id.",
    toolset=TOOLSET,
    input_model=ListJobsInput,
    output_model=FineTuningJobList,
    scope=DATA_SCOPE,
    method="GET",
    path="/fine_tuning/jobs",
    read_only=True,
    idempotent=True,
)
async def list_jobs(ctx: CallContext, args: ListJobsInput) -> FineTuningJobList:
    query = select(FineTuningJobRow).where(FineTuningJobRow.workspace_id == ctx.workspace_id)
    params = CursorParams(after=args.after, limit=args.limit)
    async with ctx.services.sessions() as session:
        rows, has_more = await cursor_rows(session, query, FineTuningJobRow.created_at, FineTuningJobRow.id, params)
    return FineTuningJobList.model_validate(cursor_page([store.to_wire(row) for row in rows], has_more))


@operation(
    name="fine_tuning_jobs_retrieve",
    summary="Get one fine-tuning job: status (and the provider's raw status), fine_tuned_model once it succeeded, "
    "error if it failed.",
    toolset=TOOLSET,
    input_model=JobIdInput,
    output_model=FineTuningJobObject,
    scope=DATA_SCOPE,
    method="GET",
    path="/fine_tuning/jobs/{fine_tuning_job_id}",
    read_only=True,
    idempotent=True,
    resource_uri="portico://fine_tuning_jobs/{fine_tuning_job_id}",
)
async def retrieve(ctx: CallContext, args: JobIdInput) -> FineTuningJobObject:
    return store.to_wire(await store.get_job(ctx, args.fine_tuning_job_id))


@operation(
    name="fine_tuning_jobs_cancel",
    summary="Cancel a fine-tuning job: the provider's job is stopped and the job is 'cancelled'.",
    toolset=TOOLSET,
    input_model=JobIdInput,
    output_model=FineTuningJobObject,
    scope=DATA_SCOPE,
    method="POST",
    path="/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
    destructive=True,
    idempotent=True,
)
async def cancel(ctx: CallContext, args: JobIdInput) -> FineTuningJobObject:
    return store.to_wire(await cancel_job(ctx, args.fine_tuning_job_id))


@operation(
    name="fine_tuning_jobs_events",
    summary="A fine-tuning job's events, newest first (state changes, metrics, the tuned model); page with 'after'.",
    toolset=TOOLSET,
    input_model=ListEventsInput,
    output_model=FineTuningEventList,
    scope=DATA_SCOPE,
    method="GET",
    path="/fine_tuning/jobs/{fine_tuning_job_id}/events",
    read_only=True,
    idempotent=True,
    resource_uri="portico://fine_tuning_jobs/{fine_tuning_job_id}/events",
)
async def list_events(ctx: CallContext, args: ListEventsInput) -> FineTuningEventList:
    row = await store.get_job(ctx, args.fine_tuning_job_id)
    found, has_more = await events.list_events(ctx.services, row.id, args.after, args.limit)
    return FineTuningEventList.model_validate(cursor_page(found, has_more))


@operation(
    name="fine_tuning_jobs_checkpoints",
    summary="A fine-tuning job's checkpoints, newest first (step, metrics, checkpoint model); empty with a 'note' "
    "where the provider keeps none.",
    toolset=TOOLSET,
    input_model=ListCheckpointsInput,
    output_model=FineTuningCheckpointList,
    scope=DATA_SCOPE,
    method="GET",
    path="/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints",
    read_only=True,
    idempotent=True,
)
async def list_checkpoints(ctx: CallContext, args: ListCheckpointsInput) -> FineTuningCheckpointList:
    row = await store.get_job(ctx, args.fine_tuning_job_id)
    found, has_more = await events.list_checkpoints(ctx.services, row.id, args.after, args.limit)
    page = FineTuningCheckpointList.model_validate(cursor_page(found, has_more))
    page.note = DRIVERS[adapter_of(row.provider)].checkpoints_note if not found else None
    return page
