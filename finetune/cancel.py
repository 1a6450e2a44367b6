"""Cancelling a fine-tuning job, in the API call itself: OpenAI's fine-tuning has no `cancelling` state, and every
provider's stop (OpenAI cancel, Bedrock StopModelCustomizationJob, Vertex `:cancel`) lands in a state that maps to
`cancelled` at once (Stopping, CANCELLING), so the answer can say `cancelled`.

The call takes the job's lease (waiting for a running step, e.g. a long staging, up to `LEASE_WAIT` seconds), asks
the provider to stop if it has the job, and moves the row to `cancelled`. If the lease does not come in time, the row
is moved anyway: the step holding it re-reads the row after creating the provider's job and stops that job itself
(`finetune.steps._submit`), so a job cancelled mid-staging never trains.
"""

from __future__ import annotations

import logging

from batch.native.lock import batch_lock
from finetune import store
from finetune.drivers.base import ProviderRefused, ProviderUnavailable
from finetune.drivers.registry import DRIVERS, adapter_of
from finetune.events import EventDraft, record_events
from finetune.states import FineTuneStatus
from finetune.steps import follow
from finetune.target import tune_job
from portico.context import CallContext
from portico.db.fine_tuning import FineTuningJobRow
from portico.errors import Conflict, PorticoError, ServiceUnavailable
from portico.ids import now

log = logging.getLogger(__name__)

LEASE_WAIT = 20.0


async def cancel_job(ctx: CallContext, job_id: str) -> FineTuningJobRow:
    row = await store.get_job(ctx, job_id)
    if row.status == FineTuneStatus.CANCELLED:
        return row
    _refuse_finished(row)
    services = ctx.services
    async with batch_lock(services, row.id, wait=LEASE_WAIT) as held:
        fresh = await store.load(services, row.id)
        row = fresh or row
        if row.status == FineTuneStatus.CANCELLED:
            return row
        _refuse_finished(row)
        provider_status = await _stop_at_provider(ctx, row) if held else None
        if row.status in store.TERMINAL:
            return row  # the provider's job had ended first, and the row now says how
        changes = {"provider_status": provider_status} if provider_status else {}
        await store.transition(services, row, FineTuneStatus.CANCELLED, **changes)
    message = "Fine-tuning job cancelled"
    await record_events(services, row.id, [EventDraft("portico:cancelled", now(), message)])
    await store.announce_events(services, row)
    return row


def _refuse_finished(row: FineTuningJobRow) -> None:
    if row.status in store.TERMINAL:
        raise Conflict(
            f"Fine-tuning job {row.id} is already {row.status}; only a running job can be cancelled.",
            param="fine_tuning_job_id",
            code="job_finished",
        )


async def _stop_at_provider(ctx: CallContext, row: FineTuningJobRow) -> str | None:
    """Stop the provider's job (if there is one yet) and return its raw state as the stop left it. When the provider
    refuses because its job already ended, the row follows the provider instead (and is then terminal)."""
    if row.provider_job_id is None:
        return None
    driver = DRIVERS[adapter_of(row.provider)]
    try:
        job = await tune_job(ctx.services, row)
        try:
            await driver.cancel(job)
        except ProviderRefused as refusal:
            log.info("fine-tuning job %s: the provider did not cancel: %s", row.id, refusal.message)
            await follow(job, await driver.poll(job))
            return None
        return (await driver.poll(job)).raw_state[:64]
    except ProviderUnavailable as error:
        raise ServiceUnavailable(f"The provider could not be reached to cancel the job: {error}") from error
    except (ProviderRefused, PorticoError) as refusal:
        log.info("fine-tuning job %s: cancelled at Portico only: %s", row.id, refusal)
        return None
