"""`GET /health`: 200 once the database, queue and blob store answer; 503 naming what does not."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portico.context import Services

log = logging.getLogger(__name__)


async def _probe_database(services: Services) -> None:
    async with services.sessions() as session:
        await session.execute(text("SELECT 1"))


async def _probe_queue(services: Services) -> None:
    if services.redis is None:
        raise RuntimeError("no Redis configured")
    await services.redis.ping()


async def _probe_blobs(services: Services) -> None:
    await services.blobs.check()


PROBES = {"database": _probe_database, "queue": _probe_queue, "blob_store": _probe_blobs}


def health_route(services: Services) -> Route:
    async def health(_: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        for name, probe in PROBES.items():
            try:
                await probe(services)
                checks[name] = "ok"
            except Exception as error:  # noqa: BLE001 - a health check reports any failure, it does not raise
                log.warning("health: %s is unreachable: %s", name, error)
                checks[name] = f"error: {error}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503)

    return Route("/health", health, methods=["GET"])
