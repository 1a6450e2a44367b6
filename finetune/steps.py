"""One step of a fine-tuning job: look at the row and the provider, and move the job on. The submit job and every
poll run this same step under the job's lease (`batch.native.lock`, keyed by the job id); it is re-runnable from the
row alone, so a crash anywhere costs a repeat, never a duplicate provider job, event or checkpoint.

    no provider job yet   stage + create (idempotently); if the job was cancelled meanwhile, stop the new one
    provider job exists   poll; record the events and checkpoints seen (keyed, `finetune.events`); follow the
                          mapped state (`finetune.states`), keeping the raw one in `provider_status`:
        queued / running     move along (validating_files → queued → running), progress and estimates updated
        succeeded            `fine_tuned_model` and `trained_tokens` set; the model is routable from now on
        failed               `error` from the provider (or Portico's own reason)
        cancelled            cancelled, whoever stopped it

A provider state behind Portico's (queued after running) updates only the other columns. Every move is a
compare-and-set transition; losing a race (the API cancelling meanwhile) ends the step, and the next poll decides.
"""

from __future__ import annotations

import logging
from typing import Any

from batch.native.lock import batch_lock
from finetune import store
from finetune.drivers.base import ProviderRefused, ProviderTune, ProviderUnavailable, TuneDriver, TuneJob
from finetune.drivers.registry import DRIVERS, adapter_of
from finetune.events import EventDraft, record_checkpoints, record_events
from finetune.polling import reschedule
from finetune.states import FINE_TUNE, FineTuneStatus, map_fine_tune_state
from finetune.target import tune_job
from finetune.training.errors import TrainingDataError
from portico.context import Services
from portico.db.fine_tuning import FineTuningJobRow
from portico.errors import Conflict, PorticoError
from portico.ids import now
from portico.job_walk import JobWalker

log = logging.getLogger(__name__)
S = FineTuneStatus
_WALKER = JobWalker(FINE_TUNE, store.transition, store.save, lambda row: S(row.status))


async def advance(services: Services, job_id: str, *, wait: float = 0.0) -> None:
    async with batch_lock(services, job_id, wait=wait) as held:
        if not held:
            return  # another step is running; the cron comes back
        row = await store.load(services, job_id)
        if row is None or S(row.status) in store.TERMINAL:
            return
        try:
            await _step(services, row)
        except Conflict as race:
            log.info("fine-tuning job %s moved while a step ran (%s); the next poll decides", job_id, race.message)
        finally:
            await reschedule(services, row)


async def _step(services: Services, row: FineTuningJobRow) -> None:
    driver = DRIVERS[adapter_of(row.provider)]
    try:
        job = await tune_job(services, row)
    except PorticoError as error:
        await fail(
            services, row, "provider_unreachable", f"The job's provider can no longer be reached: {error.message}"
        )
        return
    try:
        if row.provider_job_id is None:
            await _submit(job, driver)
            return
        await follow(job, await driver.poll(job))
    except ProviderUnavailable as error:
        log.warning("fine-tuning job %s: %s; trying again at the next poll", row.id, error)
    except ProviderRefused as refusal:
        await fail(services, job.row, "provider_refused", refusal.message)
    except TrainingDataError as bad:
        # Data Portico converts while staging (files too large to check at create).
        await fail(services, job.row, f"invalid_{bad.param}", bad.message, param=bad.param)


async def _submit(job: TuneJob, driver: TuneDriver) -> None:
    seen = await driver.submit(job)
    fresh = await store.load(job.services, job.row.id)
    if fresh is not None and fresh.status == S.CANCELLED:
        # Cancelled while the provider's job was being created: that job must not run on.
        job.row = fresh
        try:
            await driver.cancel(job)
        except ProviderRefused as refusal:
            log.info("fine-tuning job %s: the provider did not cancel: %s", job.row.id, refusal.message)
        return
    await follow(job, seen)


async def follow(job: TuneJob, seen: ProviderTune) -> None:
    row, services = job.row, job.services
    await _record(job, seen)
    try:
        target = map_fine_tune_state(adapter_of(row.provider), seen.raw_state)
    except ValueError as unknown:
        log.warning("fine-tuning job %s: %s", row.id, unknown)
        await _WALKER.save_if_changed(services, row, provider_status=seen.raw_state[:64])
        return
    changes: dict[str, Any] = {"provider_status": seen.raw_state[:64], "estimated_finish": seen.estimated_finish}
    options = dict(row.options or {})
    if seen.progress is not None:
        options["progress"] = seen.progress
    changes["options"] = options
    if seen.hyperparameters:
        changes["hyperparameters"] = {**(row.hyperparameters or {}), **seen.hyperparameters}
    if target == S.SUCCEEDED:
        changes.update(fine_tuned_model=seen.fine_tuned_model, trained_tokens=seen.trained_tokens)
    if target == S.FAILED:
        message = f"The provider's job ended in state {seen.raw_state}."
        changes["error"] = _error(seen.error) or {"code": "provider_failed", "message": message, "param": None}
    await _WALKER.walk(services, row, target, **changes)


async def _record(job: TuneJob, seen: ProviderTune) -> None:
    added = await record_events(job.services, job.row.id, seen.events)
    await record_checkpoints(job.services, job.row.id, seen.checkpoints)
    if added:
        await store.announce_events(job.services, job.row)


def _error(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    return {
        "code": str(raw.get("code") or "provider_failed"),
        "message": str(raw.get("message") or "The provider's job failed."),
        "param": raw.get("param"),
    }


async def fail(services: Services, row: FineTuningJobRow, code: str, message: str, param: str | None = None) -> None:
    """The job fails for a reason of Portico's (or a refusal), with an event saying why."""
    await record_events(services, row.id, [EventDraft("portico:failed", now(), message, level="error")])
    await _WALKER.walk(services, row, S.FAILED, error={"code": code, "message": message, "param": param})
