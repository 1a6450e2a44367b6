"""Schema migrations: the migrated schema equals the models on SQLite and PostgreSQL, and re-running the
migrations on a populated database keeps its rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from portico.db import credentials, integrations, logs, responses  # noqa: F401 - their tables are part of the schema
from portico.db.engine import alembic_config, create_engine, upgrade_schema
from portico.db.models import Base
from tests.conftest import fresh_postgres_database


def schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'portico.db'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_url"), f"migrations_{tmp_path.name}")


async def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_schema(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(schema_differences) == []
            revision = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        await engine.dispose()


async def test_upgrading_from_the_first_revision_keeps_existing_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_schema(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO organisations (id, name, created_at) VALUES ('o1', 'Org', 1)"))
            await connection.execute(
                text(
                    "INSERT INTO workspaces (id, slug, organisation_id, name, is_default, metadata, usage_limits,"
                    " rate_limits, created_at, last_updated_at)"
                    " VALUES ('w1', 'w1', 'o1', 'W', true, '{}', '[]', '[]', 1, 1)"
                )
            )
        await upgrade_schema(engine)
        await upgrade_schema(engine)  # a second start finds nothing to do
        async with engine.connect() as connection:
            names = (await connection.execute(text("SELECT name FROM workspaces"))).scalars().all()
            tables = await connection.run_sync(lambda sync: sync.dialect.get_table_names(sync))
        assert names == ["W"]
        assert {"virtual_keys", "configs", "config_versions", "integrations", "providers"} <= set(tables)
    finally:
        await engine.dispose()
