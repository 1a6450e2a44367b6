"""Shared fixtures: real services on loopback (Redis-compatible server, PostgreSQL, moto S3, a GCS emulator) and
the real Portico app under uvicorn, configured as one of several stacks."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from google.cloud import storage

from portico.settings import MIB, BlobBackend, BlobSettings, Settings
from tests.support.object_stores import gcs_emulator, moto_s3_server
from tests.support.postgres import postgres_server
from tests.support.redis import redis_server
from tests.support.server import RunningPortico, run_portico

BUCKET = "portico-test"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env, moto_s3_server() as url:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env, gcs_emulator() as url:
        env.setenv("STORAGE_EMULATOR_HOST", url)
        storage.Client(project="portico").create_bucket(BUCKET)
        yield url


@dataclass(frozen=True)
class Stack:
    """A combination of system of record and blob backend the app is tested on."""

    name: str
    database: str  # "sqlite" | "postgresql"
    blob: BlobBackend


STACKS = {
    "sqlite-local": Stack("sqlite-local", "sqlite", BlobBackend.LOCAL),
    "postgresql-s3": Stack("postgresql-s3", "postgresql", BlobBackend.S3),
    "sqlite-gcs": Stack("sqlite-gcs", "sqlite", BlobBackend.GCS),
}


def stack_settings(request: pytest.FixtureRequest, stack: Stack, data_dir: Path, **overrides: object) -> Settings:
    blob = BlobSettings(backend=stack.blob, bucket=BUCKET, prefix=f"{data_dir.name}/", part_size=8 * MIB)
    if stack.blob is BlobBackend.S3:
        blob.endpoint_url = request.getfixturevalue("s3_endpoint")
    elif stack.blob is BlobBackend.GCS:
        request.getfixturevalue("gcs_endpoint")
    database_url = request.getfixturevalue("postgres_url") if stack.database == "postgresql" else ""
    if database_url:
        # One PostgreSQL database per server: drop what an earlier module left behind.
        database_url = fresh_postgres_database(database_url, data_dir.name)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=private_redis_database(request.getfixturevalue("redis_url")),
        blob=blob,
        **overrides,  # type: ignore[arg-type]
    )


_redis_databases = itertools.cycle(range(1, 16))


def private_redis_database(url: str) -> str:
    """The session's Redis server, at a logical database of this Portico's own (emptied first). arq's job ids are
    global to a database, so two Porticos sharing one would run (and drop) each other's jobs."""
    import redis

    private = f"{url.rsplit('/', 1)[0]}/{next(_redis_databases)}"
    client = redis.Redis.from_url(private)
    try:
        client.flushdb()
    finally:
        client.close()
    return private


def fresh_postgres_database(url: str, name: str) -> str:
    import asyncio

    import asyncpg

    database = "t_" + "".join(c if c.isalnum() else "_" for c in name.lower())[:50]
    plain = url.replace("postgresql+asyncpg://", "postgresql://")

    async def create() -> None:
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
            await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return url.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture(scope="module", params=list(STACKS))
def portico(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortico]:
    """Portico on each stack in turn (module scope: one server per test module and stack)."""
    stack = STACKS[request.param]
    with run_portico(stack_settings(request, stack, tmp_path_factory.mktemp(stack.name))) as running:
        yield running


@pytest.fixture(scope="module")
def portico_local(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortico]:
    """Portico on the embedded defaults only (SQLite + local blobs), for tests that do not vary by stack."""
    data_dir = tmp_path_factory.mktemp("local")
    with run_portico(stack_settings(request, STACKS["sqlite-local"], data_dir)) as running:
        yield running


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
