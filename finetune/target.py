"""The provider a fine-tuning job runs on, found again by a worker: the job's sealed route resolved as its creator
would resolve it now (the virtual key's current secrets, the operator's current endpoints).

The training files are needed only to submit: once the provider has the job, a caller deleting them does not stop
the job from being polled.
"""

from __future__ import annotations

from collections.abc import Iterator

from files.store import get_file
from finetune import store
from finetune.drivers.base import TuneJob
from gateway.config_model import Target
from gateway.route import plan_for
from gateway.targets import ResolvedTarget, resolve
from portico.context import CallContext, Services
from portico.db.fine_tuning import FineTuningJobRow
from portico.db.models import File
from portico.errors import InvalidRequest, NotFound


def leaves(node: Target) -> Iterator[Target]:
    if node.is_leaf:
        yield node
        return
    for child in node.targets or ():
        yield from leaves(child)


async def provider_target(ctx: CallContext, row: FineTuningJobRow) -> ResolvedTarget:
    plan = await plan_for(ctx, store.open_route(ctx.services, row))
    for leaf in leaves(plan):
        target = await resolve(ctx, leaf, {})
        if target.provider == row.provider:
            return target
    raise InvalidRequest(f"The job's route no longer leads to {row.provider}.", param="x-portkey-virtual-key")


async def _file(ctx: CallContext, file_id: str | None, param: str, needed: bool) -> File | None:
    if file_id is None:
        return None
    try:
        return await get_file(ctx, file_id, param=param)
    except NotFound:
        if needed:
            raise
        return None


async def tune_job(services: Services, row: FineTuningJobRow) -> TuneJob:
    ctx = store.acting_context(services, row)
    target = await provider_target(ctx, row)
    needed = row.provider_job_id is None
    training = await _file(ctx, row.training_file, "training_file", needed)
    validation = await _file(ctx, row.validation_file, "validation_file", needed)
    return TuneJob(services, row, target, training, validation)
