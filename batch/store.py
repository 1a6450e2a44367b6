"""Batch rows: reading them within a workspace, rendering them, and moving them through the state machine.

Every status change goes through `transition`, which checks the move against `batch.states.BATCH`, stamps the
matching `<status>_at` time, saves, and publishes the new state on the job bus. Updates are conditional on the
status read (compare-and-set), so an API cancel racing a worker's completion cannot both win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from batch.models import BatchError, BatchErrors, BatchObject, RequestCounts
from batch.states import BATCH, BatchStatus
from gateway.route import Route
from portico import bus
from portico.context import CallContext, Principal, Services
from portico.db.batches import BatchRow
from portico.errors import Conflict, NotFound
from portico.ids import now
from portico.secrets import SecretBox

KIND = "batches"
TERMINAL = BATCH.terminal
ACTIVE = frozenset(BatchStatus) - TERMINAL

# The `<status>_at` column each status stamps when it is entered.
STAMPS: dict[BatchStatus, str] = {
    BatchStatus.IN_PROGRESS: "in_progress_at",
    BatchStatus.FINALIZING: "finalizing_at",
    BatchStatus.COMPLETED: "completed_at",
    BatchStatus.FAILED: "failed_at",
    BatchStatus.EXPIRED: "expired_at",
    BatchStatus.CANCELLING: "cancelling_at",
    BatchStatus.CANCELLED: "cancelled_at",
}


def to_wire(row: BatchRow, live: RequestCounts | None = None) -> BatchObject:
    errors = BatchErrors(data=[BatchError.model_validate(e) for e in row.errors]) if row.errors else None
    counts = live or RequestCounts(total=row.total, completed=row.completed, failed=row.failed)
    return BatchObject(
        id=row.id,
        endpoint=row.endpoint,
        errors=errors,
        input_file_id=row.input_file_id,
        completion_window=row.completion_window,
        status=row.status,
        output_file_id=row.output_file_id,
        error_file_id=row.error_file_id,
        created_at=row.created_at,
        in_progress_at=row.in_progress_at,
        expires_at=row.expires_at,
        finalizing_at=row.finalizing_at,
        completed_at=row.completed_at,
        failed_at=row.failed_at,
        expired_at=row.expired_at,
        cancelling_at=row.cancelling_at,
        cancelled_at=row.cancelled_at,
        request_counts=counts,
        metadata=row.metadata_,
        mode="managed" if row.mode == "managed" else "native",
        provider=row.provider,
        provider_status=row.provider_status,
        provider_batch_id=row.provider_batch_id,
    )


async def get_batch(ctx: CallContext, batch_id: str) -> BatchRow:
    """The batch `batch_id` of the caller's workspace; another workspace's id answers 404 like a missing one."""
    async with ctx.services.sessions() as session:
        row = (
            await session.execute(
                select(BatchRow).where(BatchRow.id == batch_id, BatchRow.workspace_id == ctx.workspace_id)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound.object("batch", batch_id, param="batch_id")
    return row


async def load(services: Services, batch_id: str) -> BatchRow | None:
    """For workers: the row by id alone (the job carries the id it was enqueued with)."""
    async with services.sessions() as session:
        return (await session.execute(select(BatchRow).where(BatchRow.id == batch_id))).scalar_one_or_none()


# The code of the Conflict `transition` raises when another process moved the row first.
CONCURRENT_UPDATE = "concurrent_update"


async def transition(services: Services, row: BatchRow, new: BatchStatus, **changes: Any) -> BatchRow:
    """Move `row` to `new` (with other column `changes`), if nobody moved it meanwhile; returns the saved row.

    Raises `IllegalTransition` (409) when the machine forbids the move, `Conflict` when the row's status changed
    since it was read (reload and decide again)."""
    current = BatchStatus(row.status)
    BATCH.check(current, new)
    values: dict[str, Any] = {"status": new.value, **changes}
    stamp = STAMPS.get(new)
    if stamp and new != current and getattr(row, stamp) is None:
        values[stamp] = now()
    async with services.sessions() as session, session.begin():
        result = await session.execute(
            update(BatchRow).where(BatchRow.id == row.id, BatchRow.status == current.value).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Batch {row.id} changed state meanwhile; read it again.", code=CONCURRENT_UPDATE)
    for name, value in values.items():
        setattr(row, "metadata_" if name == "metadata" else name, value)
    await announce(services, row)
    return row


async def save(services: Services, row: BatchRow, **changes: Any) -> None:
    """Update columns other than the status (counts, provider ids, poll times) and announce the change."""
    async with services.sessions() as session, session.begin():
        await session.execute(update(BatchRow).where(BatchRow.id == row.id).values(**changes))
    for name, value in changes.items():
        setattr(row, name, value)
    await announce(services, row)


async def announce(services: Services, row: BatchRow, live: RequestCounts | None = None) -> None:
    payload = {"status": row.status, "batch": to_wire(row, live).model_dump()}
    await bus.publish(services, KIND, row.id, payload, workspace_id=row.workspace_id)


def seal_route(services: Services, route: Route) -> str:
    return SecretBox.from_settings(services.settings).seal(route.model_dump(exclude_none=True))


def open_route(services: Services, row: BatchRow) -> Route:
    return Route.model_validate(SecretBox.from_settings(services.settings).open(row.sealed_route))


def acting_context(services: Services, row: BatchRow) -> CallContext:
    """A call context for a worker acting on the batch: its workspace, on behalf of the key that created it. Its
    scopes are empty: a worker calls services directly, never operations."""
    principal = Principal(
        api_key_id=row.api_key_id,
        organisation_id=row.organisation_id,
        workspace_id=row.workspace_id,
        key_type="workspace",
        scopes=frozenset(),
    )
    return CallContext(principal=principal, services=services, workspace_id=row.workspace_id)
