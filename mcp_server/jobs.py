"""`wait_for_job`: block until a job reaches a final status (or a timeout), reporting progress meanwhile.

The tool knows jobs only through `JOB_KINDS`: per kind, the registry operation that retrieves one (so every read is
the caller's own, with the REST API's workspace checks) and how to read its status and progress. Supporting another
kind of job is one entry there, provided its changes are published on the job bus under that kind.

The wait watches the job's bus updates before the first read (a change between that read and the wait is not
missed), re-reads on every update, and also every `FALLBACK_SECONDS` in case a message was lost. Timing out is an
answer, not an error: the job as it stands, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from batch.states import BATCH
from finetune.states import FINE_TUNE
from mcp_server.calls import PrincipalSource, run_operation
from mcp_server.updates import JobUpdates
from portico import bus
from portico.context import Services
from portico.registry import Operation, Registry

MAX_TIMEOUT_SECONDS = 600
# Re-read this often even without updates: the bus is best-effort (DESIGN.md §2).
FALLBACK_SECONDS = 5.0


@dataclass(frozen=True)
class Progress:
    done: float
    total: float | None


def request_counts(job: dict[str, Any]) -> Progress:
    """Batches: lines answered (completed or failed) out of `request_counts.total` (unknown while validating)."""
    counts = job.get("request_counts") or {}
    total = counts.get("total") or None
    return Progress(done=counts.get("completed", 0) + counts.get("failed", 0), total=total)


def fine_tune_progress(job: dict[str, Any]) -> Progress:
    """Fine-tunes: steps (OpenAI) or stages (Bedrock) done, when the provider reports them."""
    progress = job.get("progress") or {}
    return Progress(done=progress.get("done", 0), total=progress.get("total"))


def no_counts(_: dict[str, Any]) -> Progress:
    """Jobs without countable work: one notification, naming the status the wait started in."""
    return Progress(done=0, total=None)


@dataclass(frozen=True)
class JobKind:
    retrieve: str  # the registry operation reading one job
    id_argument: str  # its argument naming the job
    terminal: frozenset[str]  # statuses the job never leaves
    progress: Callable[[dict[str, Any]], Progress] = no_counts  # read from the operation's output


JOB_KINDS: dict[str, JobKind] = {
    "batches": JobKind(
        retrieve="batches_retrieve",
        id_argument="batch_id",
        terminal=frozenset(str(status) for status in BATCH.terminal),
        progress=request_counts,
    ),
    "fine_tuning_jobs": JobKind(
        retrieve="fine_tuning_jobs_retrieve",
        id_argument="fine_tuning_job_id",
        terminal=frozenset(str(status) for status in FINE_TUNE.terminal),
        progress=fine_tune_progress,
    ),
}


class JobWait(BaseModel):
    kind: str
    id: str
    status: str
    finished: bool = Field(description="The job reached a final status.")
    timed_out: bool = Field(description="The timeout passed first; call wait_for_job again to keep waiting.")
    message: str
    job: dict[str, Any] = Field(description="The job as its retrieve operation returns it.")


class _Reporter:
    """Progress notifications, sent when the count grows (MCP requires each one to increase)."""

    def __init__(self, ctx: Context, kind: str, job_id: str) -> None:
        self._ctx = ctx
        self._label = f"{kind} {job_id}"
        self._sent: float | None = None

    async def report(self, status: str, progress: Progress) -> None:
        if self._sent is not None and progress.done <= self._sent:
            return
        self._sent = progress.done
        of_total = f"/{progress.total:g}" if progress.total is not None else ""
        await self._ctx.report_progress(
            progress.done, progress.total, f"{self._label}: {status}, {progress.done:g}{of_total}"
        )


def add_job_tools(
    mcp: MCPServer[Any], registry: Registry, services: Services, principal_of: PrincipalSource, hub: JobUpdates
) -> None:
    def retrieve_operation(kind: str) -> tuple[JobKind, Operation]:
        spec = JOB_KINDS.get(kind)
        operation = registry.get(spec.retrieve) if spec is not None else None
        if spec is None or operation is None:
            raise ToolError(f"Unknown job kind '{kind}'; one of: {', '.join(sorted(JOB_KINDS))}.")
        return spec, operation

    async def wait_for_job(
        ctx: Context,
        kind: str = Field(description=f"The kind of job: {', '.join(sorted(JOB_KINDS))}."),
        id: str = Field(description="The job's id, e.g. 'batch_abc123'."),
        timeout_seconds: float = Field(
            60, ge=0, le=MAX_TIMEOUT_SECONDS, description="How long to wait at most (seconds, up to 600)."
        ),
    ) -> JobWait:
        """Wait until a job (a batch) finishes, reporting progress (lines done of total) meanwhile; returns the job,
        or on timeout the job as it stands."""
        spec, operation = retrieve_operation(kind)
        reporter = _Reporter(ctx, kind, id)
        deadline = anyio.current_time() + timeout_seconds
        with hub.watch(bus.resource_uri(kind, id)) as updated:
            while True:
                job: BaseModel = await run_operation(operation, services, principal_of, ctx, {spec.id_argument: id})
                found = job.model_dump(mode="json")
                status = str(found.get("status"))
                await reporter.report(status, spec.progress(found))
                remaining = deadline - anyio.current_time()
                if status in spec.terminal or remaining <= 0:
                    return _outcome(kind, id, status, status in spec.terminal, timeout_seconds, found)
                with anyio.move_on_after(min(remaining, FALLBACK_SECONDS)):
                    await updated.wait()

    mcp.add_tool(
        wait_for_job,
        annotations=ToolAnnotations(
            title="Jobs: wait for job", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        structured_output=True,
    )


def _outcome(kind: str, job_id: str, status: str, finished: bool, timeout: float, job: dict[str, Any]) -> JobWait:
    if finished:
        message = f"{kind} {job_id} finished: {status}."
    else:
        message = (
            f"Timed out after {timeout:g}s; {kind} {job_id} is still {status}. Call wait_for_job again to keep waiting."
        )
    return JobWait(
        kind=kind, id=job_id, status=status, finished=finished, timed_out=not finished, message=message, job=job
    )
