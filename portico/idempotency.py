"""`Idempotency-Key` on creating requests (POST /batches, POST /files): the same key with the same body replays the
first answer; the same key with another body is refused; concurrent duplicates run once.

The first request claims the key by inserting its row (the primary key makes the claim atomic on SQLite and
PostgreSQL alike), runs, and stores its answer. A duplicate that finds the row waits for that answer; if the first
request failed, its claim is removed and the duplicate runs in its place. Keys are per workspace and operation,
and kept for a day (`workers.housekeeping`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portico.context import CallContext
from portico.db.batches import IdempotencyRecord
from portico.errors import Conflict, InvalidRequest
from portico.ids import now

M = TypeVar("M", bound=BaseModel)

MAX_KEY_LENGTH = 255
# How long a duplicate waits for the first request's answer before giving up with a retryable 409.
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05
RETENTION_SECONDS = 24 * 3600


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def idempotent(
    ctx: CallContext, operation: str, payload: dict[str, Any], model: type[M], run: Callable[[], Awaitable[M]]
) -> M:
    """`run()` once per (workspace, operation, Idempotency-Key); without a key, just `run()`."""
    key = ctx.idempotency_key
    if not key:
        return await run()
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters.", param="Idempotency-Key", code="invalid_key"
        )
    digest = fingerprint(payload)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if await _claim(ctx, operation, key, digest):
            return await _run_claimed(ctx, operation, key, run)
        replay = await _answer_of(ctx, operation, key, digest)
        if replay is not None:
            return model.model_validate(replay)
        if time.monotonic() > deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still running; retry later.",
                param="Idempotency-Key",
                code="idempotency_key_in_use",
            )
        await asyncio.sleep(POLL_SECONDS)


async def _claim(ctx: CallContext, operation: str, key: str, digest: str) -> bool:
    record = IdempotencyRecord(
        workspace_id=ctx.workspace_id, operation=operation, key=key, fingerprint=digest, response=None, created_at=now()
    )
    try:
        async with ctx.services.sessions() as session, session.begin():
            session.add(record)
    except IntegrityError:
        return False
    return True


async def _run_claimed(ctx: CallContext, operation: str, key: str, run: Callable[[], Awaitable[M]]) -> M:
    where = _where(ctx, operation, key)
    try:
        result = await run()
    except BaseException:
        # A failed first request leaves nothing to replay: the next one with this key runs afresh.
        async with ctx.services.sessions() as session, session.begin():
            await session.execute(delete(IdempotencyRecord).where(*where))
        raise
    async with ctx.services.sessions() as session, session.begin():
        await session.execute(update(IdempotencyRecord).where(*where).values(response=result.model_dump(mode="json")))
    return result


async def _answer_of(ctx: CallContext, operation: str, key: str, digest: str) -> dict[str, Any] | None:
    """The stored answer for this key (None while the first request runs, or if it failed and was released)."""
    async with ctx.services.sessions() as session:
        record = (
            await session.execute(select(IdempotencyRecord).where(*_where(ctx, operation, key)))
        ).scalar_one_or_none()
    if record is None:
        return None
    if record.fingerprint != digest:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body; use a new key for a new request.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return record.response


def _where(ctx: CallContext, operation: str, key: str) -> tuple[Any, ...]:
    return (
        IdempotencyRecord.workspace_id == ctx.workspace_id,
        IdempotencyRecord.operation == operation,
        IdempotencyRecord.key == key,
    )
