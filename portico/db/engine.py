"""The async engine and session factory, for SQLite (WAL) or PostgreSQL, and schema migrations on start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; NORMAL sync is durable across process crashes in WAL mode;
    # busy_timeout turns writer contention between the API and worker processes into a short wait, not an error.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # A pool as large as the concurrency we expect: past pool_size SQLAlchemy opens and closes a connection
        # per checkout, and with aiosqlite each one costs a thread and four PRAGMAs (bench/mcp_latency.py saw
        # ~1,100 new connections in 2,600 calls at concurrency 16 with the default of 5).
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=32, max_overflow=32)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default); existing rows are kept (each revision migrates
    them)."""

    logging.getLogger("alembic").setLevel(logging.WARNING)

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
    log.info("database schema is current (%s)", engine.url.render_as_string(hide_password=True))
