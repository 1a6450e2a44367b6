"""Creating a fine-tuning job: everything that can be refused is checked before a row exists (DESIGN.md §6), so bad
input leaves no job behind, at Portico or at the provider.

Checks, in order: the route (one target that resolves, on a provider with fine-tuning); the files (exist in this
workspace, purpose `fine-tune`); the base model (one the provider tunes: `finetune.training.models.family_of`) and
the method for its family; the provider's own parameters (`TuneDriver.prepare`: Bedrock's role ARN and bucket,
Vertex's bucket); and the training data itself (`finetune.data.check_files`: every line converted for the target,
the first bad line named by number). Files larger than `data.CHECK_AT_CREATE_BYTES` are checked by the worker while
it stages them instead; a bad line then fails the job (`validating_files` → `failed`), with the same message.
"""

from __future__ import annotations

import logging
import secrets

from redis.exceptions import RedisError

from files.store import get_file
from finetune import data, jobs, store
from finetune.drivers.registry import DRIVERS, FINE_TUNING_PROVIDERS
from finetune.events import EventDraft, record_events
from finetune.models import CreateFineTuningJobInput
from finetune.states import FineTuneStatus
from finetune.target import leaves
from finetune.training.models import check_method, family_of
from gateway.route import plan_for
from gateway.targets import ResolvedTarget, resolve
from portico.context import CallContext
from portico.db.fine_tuning import FineTuningJobRow
from portico.db.models import File
from portico.errors import InvalidRequest, ServiceUnavailable
from portico.ids import new_id, now

log = logging.getLogger(__name__)

SEED_RANGE = 2**31


async def create_job(ctx: CallContext, request: CreateFineTuningJobInput) -> FineTuningJobRow:
    target = await _target(ctx, request)
    adapter = target.spec.adapter
    training = await _file(ctx, request.training_file, "training_file")
    validation = await _file(ctx, request.validation_file, "validation_file") if request.validation_file else None
    method = request.chosen_method()
    family = family_of(adapter, request.model)
    check_method(adapter, family, method.type)
    options = DRIVERS[adapter].prepare(request, target)
    await data.check_files(ctx.services, adapter, family, method, training, validation)
    row = FineTuningJobRow(
        id=new_id("ftjob-"),
        workspace_id=ctx.workspace_id,
        api_key_id=ctx.principal.api_key_id,
        organisation_id=ctx.principal.organisation_id,
        provider=target.provider,
        status=FineTuneStatus.VALIDATING_FILES.value,
        sealed_route=store.seal_route(ctx.services, request.routing()),
        model=request.model,
        training_file=training.id,
        validation_file=validation.id if validation else None,
        hyperparameters=method.settings().hyperparameters.model_dump(exclude_none=True),
        method=method.model_dump(mode="json", exclude_none=True),
        suffix=request.suffix,
        options={**options, "family": family},
        metadata_=request.metadata,
        seed=request.seed if request.seed is not None else secrets.randbelow(SEED_RANGE),
        created_at=now(),
        poll_count=0,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
    await record_events(
        ctx.services, row.id, [EventDraft("portico:created", row.created_at, f"Created fine-tuning job: {row.id}")]
    )
    try:
        await jobs.start(ctx.services, row.id)
    except (RedisError, ServiceUnavailable) as error:
        # The job exists and will run: the poller starts any job still without a provider job once Redis answers.
        log.warning("fine-tuning job %s created, its first step not queued yet: %s", row.id, error)
    return row


async def _target(ctx: CallContext, request: CreateFineTuningJobInput) -> ResolvedTarget:
    plan = await plan_for(ctx, request.routing())
    targets = [await resolve(ctx, leaf, {}) for leaf in leaves(plan)]
    if len(targets) != 1:
        raise InvalidRequest(
            "A fine-tuning job runs on one provider: route it with one virtual key (or a config with one target).",
            param="x-portkey-virtual-key",
            code="one_provider_required",
        )
    target = targets[0]
    if target.provider not in FINE_TUNING_PROVIDERS:
        raise InvalidRequest(
            f"Portico fine-tunes on {', '.join(sorted(FINE_TUNING_PROVIDERS))}; {target.provider} has no fine-tuning "
            "API Portico drives.",
            param="x-portkey-virtual-key",
            code="fine_tuning_not_supported",
        )
    return target


async def _file(ctx: CallContext, file_id: str, param: str) -> File:
    found = await get_file(ctx, file_id, param=param)
    if found.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {found.id} has purpose '{found.purpose}'; fine-tuning needs a file uploaded with purpose "
            "'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    return found
