"""The provider a native batch runs on, found again by a worker: the batch's sealed route resolved as its creator
would resolve it now (the virtual key's current secrets, the operator's current endpoints).

The input file is needed only to submit: once the provider has the job, a caller deleting the file does not stop
the batch from being polled and collected.
"""

from __future__ import annotations

from collections.abc import Iterator

from batch import store
from batch.native.base import NativeJob
from files.store import get_file
from gateway.config_model import Target
from gateway.route import plan_for
from gateway.targets import resolve
from portico.context import Services
from portico.db.batches import BatchRow
from portico.errors import InvalidRequest, NotFound


def _leaves(node: Target) -> Iterator[Target]:
    if node.is_leaf:
        yield node
        return
    for child in node.targets or ():
        yield from _leaves(child)


async def native_job(services: Services, row: BatchRow) -> NativeJob:
    ctx = store.acting_context(services, row)
    plan = await plan_for(ctx, store.open_route(services, row))
    for leaf in _leaves(plan):
        target = await resolve(ctx, leaf, {})
        if target.provider == row.provider:
            break
    else:
        raise InvalidRequest(f"The batch's route no longer leads to {row.provider}.", param="x-portkey-virtual-key")
    try:
        source = await get_file(ctx, row.input_file_id, param="input_file_id")
    except NotFound:
        if row.provider_batch_id is None:
            raise
        source = None
    return NativeJob(services, row, target, source)
