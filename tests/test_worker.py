"""The arq worker as deployed: a job enqueued on the real Redis-compatible server, run by `build_worker` in burst
mode against the same database the API uses."""

from __future__ import annotations

import gc
from pathlib import Path

from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import select

from control_plane.bootstrap import bootstrap
from portico.db.models import UploadGrant
from portico.ids import now
from portico.services import close_services, open_services
from portico.settings import Settings
from workers.housekeeping import GRANT_RETENTION_SECONDS
from workers.worker import QUEUE_NAME, build_worker


async def test_purge_job_removes_only_long_expired_upload_grants(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url)
    services = await open_services(settings)
    try:
        await bootstrap(services)
        stale = now() - GRANT_RETENTION_SECONDS - 60
        async with services.sessions() as session, session.begin():
            for token, expires in (("old", stale), ("recent", now() - 60), ("live", now() + 600)):
                session.add(
                    UploadGrant(
                        token_hash=token,
                        workspace_id="ws-default",
                        api_key_id="k",
                        filename="f",
                        purpose="batch",
                        expires_at=expires,
                    )
                )
    finally:
        await close_services(services)

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert await pool.enqueue_job("purge_upload_grants", _queue_name=QUEUE_NAME) is not None
    finally:
        await pool.aclose()
    worker = build_worker(settings, handle_signals=False, burst=True, freeze_gc=True)
    assert gc.get_freeze_count() == 0
    try:
        await worker.main()
        # `portico worker` freezes what its start-up made (portico/gc_tuning.py).
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        await worker.close()
    # The crons that run at start-up (batch pollers, reconciler) complete beside the purge job.
    assert worker.jobs_complete >= 1 and worker.jobs_failed == 0

    services = await open_services(settings, migrate=False)
    try:
        async with services.sessions() as session:
            left = sorted((await session.execute(select(UploadGrant.token_hash))).scalars())
    finally:
        await close_services(services)
    assert left == ["live", "recent"], "only grants expired longer than the retention are purged"
