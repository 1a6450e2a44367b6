"""Fine-tuning job rows: reading them within a workspace, rendering them, and moving them through the state machine.

Every status change goes through `transition`: checked against `finetune.states.FINE_TUNE` (a terminal state is
never left), compare-and-set on the status read, so an API cancel racing a worker's poll cannot both win, and
announced on the job bus (kind `fine_tuning_jobs`), where MCP subscriptions and `wait_for_job` hear it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from finetune.models import FineTuningJobObject, Hyperparameters, JobError, Progress
from finetune.states import FINE_TUNE, FineTuneStatus
from gateway.route import Route
from portico import bus
from portico.context import CallContext, Principal, Services
from portico.db.fine_tuning import FineTuningJobRow
from portico.errors import Conflict, NotFound
from portico.ids import now
from portico.secrets import SecretBox

KIND = "fine_tuning_jobs"
TERMINAL = FINE_TUNE.terminal
ACTIVE = frozenset(FineTuneStatus) - TERMINAL


def to_wire(row: FineTuningJobRow) -> FineTuningJobObject:
    options = row.options or {}
    progress = options.get("progress")
    return FineTuningJobObject(
        id=row.id,
        created_at=row.created_at,
        error=JobError.model_validate(row.error) if row.error else None,
        fine_tuned_model=row.fine_tuned_model,
        finished_at=row.finished_at,
        hyperparameters=Hyperparameters.model_validate(row.hyperparameters or {}),
        model=row.model,
        organization_id=row.organisation_id,
        result_files=list(options.get("result_files") or []),
        status=FineTuneStatus(row.status).value,
        trained_tokens=row.trained_tokens,
        training_file=row.training_file,
        validation_file=row.validation_file,
        integrations=[],
        seed=row.seed,
        estimated_finish=row.estimated_finish,
        method=row.method,
        metadata=row.metadata_,
        user_provided_suffix=row.suffix,
        provider=row.provider,
        provider_status=row.provider_status,
        provider_job_id=row.provider_job_id,
        progress=Progress.model_validate(progress) if progress else None,
    )


async def get_job(ctx: CallContext, job_id: str) -> FineTuningJobRow:
    """The job `job_id` of the caller's workspace; another workspace's id answers 404 like a missing one."""
    query = select(FineTuningJobRow).where(
        FineTuningJobRow.id == job_id, FineTuningJobRow.workspace_id == ctx.workspace_id
    )
    async with ctx.services.sessions() as session:
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound.object("fine-tuning job", job_id, param="fine_tuning_job_id")
    return row


async def load(services: Services, job_id: str) -> FineTuningJobRow | None:
    async with services.sessions() as session:
        query = select(FineTuningJobRow).where(FineTuningJobRow.id == job_id)
        return (await session.execute(query)).scalar_one_or_none()


async def transition(
    services: Services, row: FineTuningJobRow, new: FineTuneStatus, **changes: Any
) -> FineTuningJobRow:
    """Move `row` to `new` (with other column `changes`) if nobody moved it meanwhile. Raises `IllegalTransition`
    (409) for a move the machine forbids, `Conflict` when the status changed since it was read."""
    current = FineTuneStatus(row.status)
    FINE_TUNE.check(current, new)
    values: dict[str, Any] = {"status": new.value, **changes}
    if new in TERMINAL and row.finished_at is None and "finished_at" not in changes:
        values["finished_at"] = now()
    if new in TERMINAL:
        values.setdefault("estimated_finish", None)
    async with services.sessions() as session, session.begin():
        result = await session.execute(
            update(FineTuningJobRow)
            .where(FineTuningJobRow.id == row.id, FineTuningJobRow.status == current.value)
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"Fine-tuning job {row.id} changed state meanwhile; read it again.", code="concurrent_update"
            )
    _apply(row, values)
    await announce(services, row)
    return row


async def save(services: Services, row: FineTuningJobRow, **changes: Any) -> None:
    """Update columns other than the status and announce the change."""
    async with services.sessions() as session, session.begin():
        await session.execute(update(FineTuningJobRow).where(FineTuningJobRow.id == row.id).values(**changes))
    _apply(row, changes)
    await announce(services, row)


def _apply(row: FineTuningJobRow, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, "metadata_" if name == "metadata" else name, value)


async def announce(services: Services, row: FineTuningJobRow) -> None:
    payload = {"status": row.status, "fine_tuning_job": to_wire(row).model_dump(mode="json")}
    await bus.publish(services, KIND, row.id, payload, workspace_id=row.workspace_id)


async def announce_events(services: Services, row: FineTuningJobRow) -> None:
    """New events: their own resource (`portico://fine_tuning_jobs/<id>/events`) is told to read again."""
    await bus.publish(services, KIND, f"{row.id}/events", {"status": row.status}, workspace_id=row.workspace_id)


def seal_route(services: Services, route: Route) -> str:
    return SecretBox.from_settings(services.settings).seal(route.model_dump(exclude_none=True))


def open_route(services: Services, row: FineTuningJobRow) -> Route:
    return Route.model_validate(SecretBox.from_settings(services.settings).open(row.sealed_route))


def acting_context(services: Services, row: FineTuningJobRow) -> CallContext:
    """A call context for a worker acting on the job: its workspace, on behalf of the key that created it."""
    principal = Principal(
        api_key_id=row.api_key_id,
        organisation_id=row.organisation_id,
        workspace_id=row.workspace_id,
        key_type="workspace",
        scopes=frozenset(),
    )
    return CallContext(principal=principal, services=services, workspace_id=row.workspace_id)
