"""`BlobStore.read_range` on every backend against the real thing on loopback (a directory, moto's S3 server, a GCS
emulator): a managed batch's chunk reads only its own lines with it, so every backend must cut exactly
`data[start:end]`, in bounded chunks, and refuse a missing key like every other read."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from portico.blob import BlobNotFound, BlobStore, open_blob_store
from portico.settings import MIB, BlobBackend, BlobSettings, Settings

BUCKET = "portico-test"
SIZE = 3 * MIB + 12_345
SMALL_CHUNK = 64 * 1024


@pytest.fixture(scope="module", params=list(BlobBackend))
async def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlobStore]:
    backend = BlobBackend(request.param)
    blob = BlobSettings(backend=backend, bucket=BUCKET, part_size=5 * MIB, prefix="ranges-test/")
    if backend is BlobBackend.S3:
        blob.endpoint_url = request.getfixturevalue("s3_endpoint")
    elif backend is BlobBackend.GCS:
        request.getfixturevalue("gcs_endpoint")
    opened = open_blob_store(Settings(data_dir=tmp_path_factory.mktemp("data"), blob=blob))
    yield opened
    await opened.aclose()


@pytest.fixture(scope="module")
async def stored(store: BlobStore) -> tuple[str, bytes]:
    data = os.urandom(SIZE)

    async def one_piece() -> AsyncIterator[bytes]:
        yield data

    key = f"ranges/{store.backend}"
    await store.write(key, one_piece())
    return key, data


async def sliced(store: BlobStore, key: str, start: int, end: int, chunk_size: int = SMALL_CHUNK) -> bytes:
    pieces = []
    async for piece in store.read_range(key, start, end, chunk_size):
        assert 0 < len(piece) <= chunk_size, "chunks are bounded and never empty"
        pieces.append(piece)
    return b"".join(pieces)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, SIZE),
        (0, 1),
        (1, 2),
        (SMALL_CHUNK - 1, SMALL_CHUNK + 1),
        (12_345, 12_345 + 5 * SMALL_CHUNK + 17),
        (SIZE - 10, SIZE),
        (SIZE - 10, SIZE + 1000),
    ],
    ids=["whole", "first-byte", "second-byte", "across-a-chunk", "many-chunks", "tail", "past-the-end"],
)
async def test_a_range_is_exactly_the_slice(store: BlobStore, stored: tuple[str, bytes], start: int, end: int) -> None:
    key, data = stored
    assert await sliced(store, key, start, end) == data[start:end]


async def test_empty_and_out_of_bounds_ranges_yield_nothing(store: BlobStore, stored: tuple[str, bytes]) -> None:
    key, _ = stored
    assert await sliced(store, key, 500, 500) == b""
    assert await sliced(store, key, 900, 100) == b""
    assert await sliced(store, key, SIZE + 5, SIZE + 50) == b""


async def test_the_default_chunk_size_reads_a_large_range_in_few_pieces(
    store: BlobStore, stored: tuple[str, bytes]
) -> None:
    key, data = stored
    pieces = [piece async for piece in store.read_range(key, 7, SIZE - 7)]
    assert b"".join(pieces) == data[7 : SIZE - 7]
    assert len(pieces) <= 4 and all(len(piece) <= MIB for piece in pieces)


async def test_a_missing_key_is_refused_even_for_an_empty_range(store: BlobStore) -> None:
    for start, end in ((0, 10), (3, 3)):
        with pytest.raises(BlobNotFound):
            await sliced(store, "ranges/no-such-object", start, end)


async def test_a_negative_offset_is_a_caller_bug(store: BlobStore, stored: tuple[str, bytes]) -> None:
    key, _ = stored
    with pytest.raises(ValueError, match="negative"):
        await sliced(store, key, -1, 10)
