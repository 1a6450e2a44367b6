"""Opening and closing the process-wide services: database (migrated), blob store, Redis."""

from __future__ import annotations

import anyio.to_thread
from redis.asyncio import Redis
from sqlalchemy.orm import configure_mappers

from portico.blob import open_blob_store
from portico.context import Services
from portico.db.engine import create_engine, session_factory, upgrade_schema
from portico.request_log import RequestLogWriter
from portico.settings import Settings
from providers.http import UpstreamClient
from providers.ssrf import Allowlist


async def open_services(settings: Settings, *, migrate: bool = True) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url())
    if migrate:
        await upgrade_schema(engine)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    upstream = UpstreamClient(Allowlist.from_entries(settings.custom_host_allowlist))
    sessions = session_factory(engine)
    request_log = RequestLogWriter(sessions)
    request_log.start()
    await _warm_up()
    return Services(
        settings=settings,
        sessions=sessions,
        blobs=open_blob_store(settings),
        upstream=upstream,
        request_log=request_log,
        redis=redis,
    )


async def _warm_up() -> None:
    """Pay one-time costs at start-up instead of in the first job or request: SQLAlchemy configures every mapper when
    the first ORM object is made, anyio imports its backend on the first hop to a thread. Together ~0.1 s of a
    worker's first batch plan (py-spy, bench/batches.py)."""
    configure_mappers()
    await anyio.to_thread.run_sync(int)


async def close_services(services: Services) -> None:
    await services.request_log.stop()
    await services.blobs.aclose()
    await services.upstream.aclose()
    if services.redis is not None:
        await services.redis.aclose()
    bind = services.sessions.kw.get("bind")
    if bind is not None:
        await bind.dispose()
