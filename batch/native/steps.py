"""One step of a native batch: look at the row and the provider, and move the batch on. Every arq job of a native
batch (submit, poll, cancel) runs this same step, under the batch's lease (`batch.native.lock`); it is re-runnable
from the row alone, so a crash anywhere costs a repeat, never a duplicate.

    no provider job yet   cancelling → cancelled (nothing was created); past the window → expired;
                          else stage + create (idempotently), and if a cancel arrived meanwhile, cancel it
    provider job exists   cancelling and not yet asked → ask the provider to cancel; then poll, and follow:
        validating / in_progress / cancelling   move along, keeping the raw state and live counts
        completed (partial too)                 finalizing → collect → completed, counts from the files
        cancelled / expired                     collect what the provider wrote → cancelled / expired
        failed                                  failed, with the provider's message and line errors

A cancelled request wins over whatever the provider reports next: a batch that is `cancelling` ends `cancelled`
(keeping any output), never `completed` or `failed`. Every move is a compare-and-set transition; losing a race
(an API cancel landing between read and write) ends the step, and the next poll decides again.
"""

from __future__ import annotations

import logging
from typing import Any

from batch import store
from batch.models import BatchError
from batch.native.base import BatchDriver, Collected, NativeJob, ProviderJob, ProviderRefused, ProviderUnavailable
from batch.native.lock import batch_lock
from batch.native.outputs import OutputSink, ensure_recorded, fill_unanswered
from batch.native.polling import reschedule
from batch.native.registry import DRIVERS
from batch.native.target import native_job
from batch.states import BATCH, BatchStatus, map_batch_state
from portico.context import Services
from portico.db.batches import BatchRow
from portico.errors import Conflict, PorticoError
from portico.ids import now
from portico.job_walk import JobWalker
from providers.catalogue import provider_spec

log = logging.getLogger(__name__)
S = BatchStatus
_WALKER = JobWalker(BATCH, store.transition, store.save, lambda row: S(row.status))
SETTLED = frozenset({S.COMPLETED, S.CANCELLED, S.EXPIRED})
EXPIRED_ERROR = {"code": "batch_expired", "message": "The batch did not finish within its completion window."}
# The error line a request gets when the provider's output has no line for it, by how the batch ends.
UNANSWERED = {
    S.COMPLETED: ("missing_result", "The provider finished the job without a result for this request."),
    S.EXPIRED: ("batch_expired", "This request could not be executed before the completion window expired."),
}


async def advance(services: Services, batch_id: str, *, wait: float = 0.0) -> None:
    async with batch_lock(services, batch_id, wait=wait) as held:
        if not held:
            return  # another step is running; the cron comes back
        row = await store.load(services, batch_id)
        if row is None or row.mode != "native" or S(row.status) in store.TERMINAL:
            return
        try:
            await _step(services, row)
        except Conflict as race:
            log.info("batch %s moved while a step ran (%s); the next poll decides again", batch_id, race.message)
        finally:
            await reschedule(services, row)


def _adapter(row: BatchRow) -> str:
    spec = provider_spec(row.provider)
    return spec.adapter if spec else row.provider


async def _step(services: Services, row: BatchRow) -> None:
    driver = DRIVERS[_adapter(row)]
    try:
        job = await native_job(services, row)
    except PorticoError as error:
        await _fail(services, row, f"The batch's provider can no longer be reached: {error.message}")
        return
    try:
        if row.provider_batch_id is None:
            await _submit(job, driver)
            return
        if row.status == S.CANCELLING:
            await _ask_to_cancel(job, driver)
        await _follow(job, driver, await driver.poll(job))
    except ProviderUnavailable as error:
        log.warning("batch %s: %s; trying again at the next poll", row.id, error)
    except ProviderRefused as refusal:
        await _fail(services, job.row, refusal.message, refusal.errors)


async def _submit(job: NativeJob, driver: BatchDriver) -> None:
    row = job.row
    if row.status == S.CANCELLING:
        await _WALKER.walk(job.services, row, S.CANCELLED)
        return
    if row.expires_at is not None and now() >= row.expires_at:
        await _WALKER.walk(job.services, row, S.EXPIRED, errors=[EXPIRED_ERROR])
        return
    seen = await driver.submit(job)
    # A cancel may have landed while the provider's job was being created: that job must not run on.
    fresh = await store.load(job.services, row.id)
    if fresh is not None:
        job.row = fresh
    if job.row.status == S.CANCELLING:
        await _ask_to_cancel(job, driver)
    await _follow(job, driver, seen)


async def _ask_to_cancel(job: NativeJob, driver: BatchDriver) -> None:
    if job.options.get("cancel_sent"):
        return
    try:
        await driver.cancel(job)
    except ProviderRefused as refusal:
        # Most often the job ended first; the poll that follows reports how.
        log.info("batch %s: the provider did not cancel: %s", job.row.id, refusal.message)
    await job.remember(cancel_sent=True)


async def _follow(job: NativeJob, driver: BatchDriver, seen: ProviderJob) -> None:
    row, services = job.row, job.services
    try:
        target = map_batch_state(_adapter(row), seen.raw_state)
    except ValueError as unknown:
        log.warning("batch %s: %s", row.id, unknown)
        await _WALKER.save_if_changed(services, row, provider_status=seen.raw_state[:64])
        return
    if target in SETTLED:
        await _finish(job, driver, seen, target)
        return
    if target == S.FAILED:
        message = seen.message or f"The provider's job ended in state {seen.raw_state}."
        await _fail(services, row, message, seen.errors, provider_status=seen.raw_state)
        return
    live = {
        name: value for name, value in (("completed", seen.completed), ("failed", seen.failed)) if value is not None
    }
    wanted = S.CANCELLING if row.status == S.CANCELLING else target
    await _WALKER.walk(services, row, wanted, provider_status=seen.raw_state, **live)


async def _finish(job: NativeJob, driver: BatchDriver, seen: ProviderJob, target: BatchStatus) -> None:
    row, services = job.row, job.services
    final = S.CANCELLED if row.status == S.CANCELLING else target
    if final == S.COMPLETED:
        await _WALKER.walk(services, row, S.FINALIZING, provider_status=seen.raw_state)
    errors: list[dict[str, Any]] = [EXPIRED_ERROR] if final == S.EXPIRED else []
    try:
        collected = await _collect(job, driver, final)
    except ProviderRefused as refusal:
        if final == S.COMPLETED:
            raise
        # A stopped job's partial output is a courtesy: the batch still ends as the provider says.
        collected = Collected(output=None, errors=None)
        errors.append({"code": "output_unavailable", "message": refusal.message})
    files = await ensure_recorded(services, row, collected)
    counts = {"completed": collected.completed, "failed": collected.failed}
    changes: dict[str, Any] = {"provider_status": seen.raw_state, **counts, **files}
    if errors:
        changes["errors"] = errors
    await _WALKER.walk(services, row, final, **changes)


async def _collect(job: NativeJob, driver: BatchDriver, final: BatchStatus) -> Collected:
    """The provider's results as output and error files; for a completed or expired batch, with one error line
    for each request the provider left without a result."""
    sink = OutputSink(job.row.id)
    try:
        await driver.collect(job, sink)
        unanswered = UNANSWERED.get(final)
        if unanswered is not None and job.input_file is not None:
            await fill_unanswered(job.services, sink, job.input_file, *unanswered)
    except BaseException:
        sink.discard()
        raise
    return await sink.store(job.services, job.row.workspace_id)


async def _fail(
    services: Services, row: BatchRow, message: str, errors: list[BatchError] | None = None, **changes: Any
) -> None:
    recorded = [error.model_dump(exclude_none=True) for error in errors or []]
    recorded = recorded or [{"code": "provider_failed", "message": message}]
    final = S.CANCELLED if row.status == S.CANCELLING else S.FAILED
    await _WALKER.walk(services, row, final, errors=recorded, **changes)
