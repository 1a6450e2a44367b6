"""Periodic upkeep that no request should wait for."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete

from portico.context import Services
from portico.db.batches import IdempotencyRecord
from portico.db.models import UploadGrant
from portico.idempotency import RETENTION_SECONDS as IDEMPOTENCY_RETENTION_SECONDS
from portico.ids import now

log = logging.getLogger(__name__)

# Used grants are kept a day after expiry, so a late duplicate PUT still gets a clear "already used" answer.
GRANT_RETENTION_SECONDS = 24 * 3600


async def purge_upload_grants(ctx: dict[str, Any]) -> int:
    services: Services = ctx["services"]
    async with services.sessions() as session, session.begin():
        result = await session.execute(
            delete(UploadGrant).where(UploadGrant.expires_at < now() - GRANT_RETENTION_SECONDS)
        )
    removed = int(result.rowcount)  # type: ignore[attr-defined]
    if removed:
        log.info("purged %d expired upload grants", removed)
    return removed


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Forget Idempotency-Keys older than a day: after that, the same key starts a new request."""
    services: Services = ctx["services"]
    async with services.sessions() as session, session.begin():
        result = await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now() - IDEMPOTENCY_RETENTION_SECONDS)
        )
    removed = int(result.rowcount)  # type: ignore[attr-defined]
    if removed:
        log.info("purged %d idempotency keys older than a day", removed)
    return removed
