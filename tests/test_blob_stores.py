"""Every blob store against the real thing on loopback: a directory, moto's S3 server, a GCS emulator.

The same assertions run for each backend, since callers must not be able to tell them apart: bytes come back
identical across part boundaries, and a write that fails or is cancelled leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from portico.blob import BlobNotFound, BlobStore, open_blob_store
from portico.blob.local import LocalBlobStore
from portico.settings import MIB, BlobBackend, BlobSettings, Settings

BUCKET = "portico-test"
PART_SIZE = 5 * MIB
# Deliberately not a divisor of PART_SIZE, so parts are cut from the middle of incoming chunks.
CHUNK = 1_000_003


class SourceFailed(Exception):
    pass


@pytest.fixture(scope="module", params=list(BlobBackend))
async def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlobStore]:
    backend = BlobBackend(request.param)
    blob = BlobSettings(backend=backend, bucket=BUCKET, part_size=PART_SIZE, prefix="blobs-test/")
    if backend is BlobBackend.S3:
        blob.endpoint_url = request.getfixturevalue("s3_endpoint")
    elif backend is BlobBackend.GCS:
        request.getfixturevalue("gcs_endpoint")
    opened = open_blob_store(Settings(data_dir=tmp_path_factory.mktemp("data"), blob=blob))
    assert opened.backend == backend
    await opened.check()
    yield opened
    await opened.aclose()


async def chunks_of(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(store: BlobStore, key: str, chunk_size: int = MIB) -> bytes:
    parts = []
    async for chunk in store.read(key, chunk_size):
        assert 0 < len(chunk) <= chunk_size
        parts.append(chunk)
    return b"".join(parts)


async def then_fail(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in chunks_of(data):
        yield chunk
    raise SourceFailed


def s3_client(store: BlobStore) -> Any:
    return store._client  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [4 * PART_SIZE, 2 * PART_SIZE + 7], ids=["exact-parts", "with-remainder"])
async def test_multipart_round_trip_is_byte_identical(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    key = f"round-trip/{size}"

    assert await store.write(key, chunks_of(data)) == size

    assert hashlib.sha256(await read_all(store, key)).hexdigest() == hashlib.sha256(data).hexdigest()
    if store.backend == "s3":
        # A multipart upload's ETag ends in "-<number of parts>".
        head = s3_client(store).head_object(Bucket=BUCKET, Key=f"blobs-test/{key}")
        assert head["ETag"].strip('"').endswith(f"-{-(-size // PART_SIZE)}")


@pytest.mark.parametrize("size", [0, 1, 300_000])
async def test_small_objects_round_trip(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    key = f"small/{size}"

    assert await store.write(key, chunks_of(data, 4096)) == size

    assert await read_all(store, key, chunk_size=100_000) == data
    assert await store.exists(key)


async def test_read_prefix(store: BlobStore) -> None:
    data = os.urandom(3 * MIB)
    await store.write("prefix/full", chunks_of(data))
    await store.write("prefix/empty", chunks_of(b""))

    assert await store.read_prefix("prefix/full", 1000) == data[:1000]
    assert await store.read_prefix("prefix/full", 10 * MIB) == data
    assert await store.read_prefix("prefix/full", 0) == b""
    assert await store.read_prefix("prefix/empty", 1000) == b""


async def test_exists_and_delete(store: BlobStore) -> None:
    await store.write("gone/soon", chunks_of(b"bytes"))
    assert await store.exists("gone/soon")

    await store.delete("gone/soon")

    assert not await store.exists("gone/soon")
    await store.delete("gone/soon")  # deleting a missing key is not an error
    await store.delete("never/existed")


async def test_missing_key_raises_blob_not_found(store: BlobStore) -> None:
    assert not await store.exists("missing/key")
    with pytest.raises(BlobNotFound):
        await read_all(store, "missing/key")
    with pytest.raises(BlobNotFound):
        await store.read_prefix("missing/key", 10)


async def test_failing_source_leaves_nothing(store: BlobStore) -> None:
    # More than one part arrives before the failure, so S3 has started a multipart upload and GCS a session.
    with pytest.raises(SourceFailed):
        await store.write("failing/source", then_fail(os.urandom(PART_SIZE + MIB)))

    await assert_nothing_left(store, "failing/source")


async def test_cancelled_write_leaves_nothing(store: BlobStore) -> None:
    # An anyio cancel scope (as Starlette uses) re-raises at every await inside it, so this also proves the
    # store's cleanup is shielded from the cancellation it is cleaning up after.
    one_part_sent = anyio.Event()

    async def stalls_after_one_part() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(os.urandom(PART_SIZE + MIB)):
            yield chunk
        one_part_sent.set()  # resumed, so the store has handled every chunk above
        await anyio.sleep_forever()
        yield b"never"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.write, "cancelled/write", stalls_after_one_part())
        with anyio.fail_after(30):
            await one_part_sent.wait()
        tasks.cancel_scope.cancel()

    await assert_nothing_left(store, "cancelled/write")


async def assert_nothing_left(store: BlobStore, key: str) -> None:
    assert not await store.exists(key)
    if isinstance(store, LocalBlobStore):
        assert files_under(store.path_for(key).parent) == []
    elif store.backend == "s3":
        uploads = s3_client(store).list_multipart_uploads(Bucket=BUCKET, Prefix=f"blobs-test/{key}")
        assert uploads.get("Uploads", []) == []


def files_under(folder: Path) -> list[Path]:
    """Every file left below `folder`, temp files included."""
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "./x", ""])
def test_local_rejects_keys_that_leave_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        LocalBlobStore(tmp_path).path_for(key)


async def test_local_write_rejects_escaping_key_before_touching_disk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with pytest.raises(ValueError):
        await LocalBlobStore(root).write("../x", chunks_of(b"data"))
    assert files_under(tmp_path) == []
    assert not root.exists()
