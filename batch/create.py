"""Creating a batch: everything that can be refused is checked before a row exists (DESIGN.md §6), so bad input
leaves no batch and no provider job behind.

Checks, in order: the input file (exists in this workspace, purpose `batch`, its lines call `endpoint`); the route
(a virtual key, config or provider that resolves); the mode (`native` when the window is `24h` and the route is one
provider with a batch API, `managed` otherwise); for native batches the provider's own parameters and request cap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from redis.exceptions import RedisError

from batch import store
from batch.models import CreateBatchInput
from batch.modes import modes
from batch.native.registry import DRIVERS
from batch.states import BatchStatus
from files.store import get_file
from gateway.config_model import Target
from gateway.route import plan_for
from gateway.targets import ResolvedTarget, resolve
from portico.context import CallContext
from portico.db.batches import BatchRow
from portico.db.models import File
from portico.errors import InvalidRequest, ServiceUnavailable
from portico.ids import new_id, now

log = logging.getLogger(__name__)

# OpenAI's window, and Portico's for managed batches too: past it, unfinished lines expire.
WINDOW_SECONDS = 24 * 3600
# Enough of the file to read its first line's url in all but pathological files (a first body over 256 KiB).
URL_PROBE_BYTES = 256 * 1024


async def create_batch(ctx: CallContext, request: CreateBatchInput) -> BatchRow:
    source = await _input_file(ctx, request)
    plan = await plan_for(ctx, request.routing())
    targets = [await resolve(ctx, leaf, {}) for leaf in _leaves(plan)]
    native = _native_target(request, plan, targets)
    options: dict[str, Any] = {}
    if native is not None:
        driver = DRIVERS[native.spec.adapter]
        options = driver.prepare(request, native)
        _check_cap(driver.max_requests, source, native.provider)
    row = BatchRow(
        id=new_id("batch_"),
        workspace_id=ctx.workspace_id,
        api_key_id=ctx.principal.api_key_id,
        organisation_id=ctx.principal.organisation_id,
        endpoint=request.endpoint,
        input_file_id=source.id,
        completion_window=request.completion_window,
        mode="managed" if native is None else "native",
        provider=(native or targets[0]).provider,
        status=BatchStatus.VALIDATING.value,
        sealed_route=store.seal_route(ctx.services, request.routing()),
        model=request.provider_param("model") or _provider_model(request),
        options=options,
        metadata_=request.metadata,
        total=source.line_count or 0,
        completed=0,
        failed=0,
        errors=[],
        created_at=now(),
        expires_at=now() + WINDOW_SECONDS,
        poll_count=0,
    )
    async with ctx.services.sessions() as session, session.begin():
        session.add(row)
    try:
        await modes()[row.mode].start(ctx.services, row)
    except (RedisError, ServiceUnavailable) as error:
        # The batch exists and will run: the reconciler (managed) or the poller (native) starts any batch still
        # `validating` once Redis answers again. The caller gets its batch, not an error for a batch that exists.
        log.warning("batch %s created, its first step not queued yet: %s", row.id, error)
    return row


async def _input_file(ctx: CallContext, request: CreateBatchInput) -> File:
    source = await get_file(ctx, request.input_file_id, param="input_file_id")
    if source.purpose != "batch":
        raise InvalidRequest(
            f"File {source.id} has purpose '{source.purpose}'; a batch needs a file uploaded with purpose 'batch'.",
            param="input_file_id",
            code="invalid_file_purpose",
        )
    url = _first_url(await ctx.services.blobs.read_prefix(source.blob_key, URL_PROBE_BYTES))
    if url is not None and url != request.endpoint:
        raise InvalidRequest(
            f"The file's lines call {url} but the batch's endpoint is {request.endpoint}; they must match.",
            param="endpoint",
            code="endpoint_mismatch",
        )
    return source


def _first_url(prefix: bytes) -> str | None:
    """The `url` of the file's first record, when that line fits in `prefix` (upload validation already made
    every line name the same url)."""
    for raw in prefix.split(b"\n")[:-1] or [prefix]:
        if raw.strip():
            try:
                record = json.loads(raw)
            except ValueError:
                return None
            url = record.get("url") if isinstance(record, dict) else None
            return url if isinstance(url, str) else None
    return None


def _leaves(node: Target) -> Iterator[Target]:
    if node.is_leaf:
        yield node
        return
    for child in node.targets or ():
        yield from _leaves(child)


def _native_target(request: CreateBatchInput, plan: Target, targets: list[ResolvedTarget]) -> ResolvedTarget | None:
    """The one target whose own batch API runs this batch, or None for a managed batch."""
    if request.completion_window != "24h" or len(targets) != 1:
        return None
    single = plan.is_leaf or (plan.strategy is not None and plan.strategy.mode == "single")
    target = targets[0]
    if not single or not target.spec.batch_api or target.spec.adapter not in DRIVERS:
        return None
    return target


def _provider_model(request: CreateBatchInput) -> str | None:
    return request.portkey_options.provider_model if request.portkey_options else None


def _check_cap(cap: int | None, source: File, provider: str) -> None:
    if cap is not None and (source.line_count or 0) > cap:
        raise InvalidRequest(
            f"File {source.id} holds {source.line_count} requests; {provider} batch jobs take at most {cap}. "
            "Split the file, or use completion_window 'immediate' to let Portico run it.",
            param="input_file_id",
            code="too_many_requests_in_batch",
        )
