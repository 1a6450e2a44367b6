"""Blobs in a Google Cloud Storage bucket through google-cloud-storage.

The client is synchronous, so every call runs in a worker thread. Writes are resumable uploads sent in
`part_size` pieces (the library's `BlobWriter` buffers at most one piece plus the incoming chunk); an object only
appears once the final piece is sent, so a failed write cancels the session and leaves nothing behind. Reads pin
the object's generation, so a concurrent overwrite can never splice two versions into one stream.

Pointing at an emulator follows the library's own convention: with `STORAGE_EMULATOR_HOST` set, the client talks
to that URL with anonymous credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from google.api_core.exceptions import GoogleAPIError, NotFound, RequestRangeNotSatisfiable
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import TransportError
from google.cloud import storage
from google.cloud.storage.fileio import BlobWriter

from portico.blob.base import DEFAULT_READ_CHUNK, BlobNotFound, check_range
from portico.settings import BlobSettings

logger = logging.getLogger(__name__)

# Resumable uploads only accept pieces in multiples of 256 KiB (the last one excepted).
CHUNK_MULTIPLE = 256 * 1024
# requests' own exceptions derive from OSError.
_CLEANUP_ERRORS = (GoogleAPIError, TransportError, OSError)


class GcsBlobStore:
    backend = "gcs"

    def __init__(self, settings: BlobSettings, client: Any = None) -> None:
        if not settings.bucket:
            raise ValueError("blob.bucket must be set for the gcs backend")
        if settings.part_size <= 0 or settings.part_size % CHUNK_MULTIPLE:
            raise ValueError(f"blob.part_size must be a positive multiple of {CHUNK_MULTIPLE} bytes for GCS")
        self.prefix = settings.prefix
        self.part_size = settings.part_size
        self._client = client or _make_client(settings.gcs_project)
        self._bucket = self._client.bucket(settings.bucket)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        blob = self._bucket.blob(self.prefix + key)
        writer = BlobWriter(blob, chunk_size=self.part_size)
        size = 0
        finalizing = False
        try:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(writer.write, chunk)
                size += len(chunk)
            finalizing = True
            await anyio.to_thread.run_sync(writer.close)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_abandon, writer, blob, finalizing)
            raise
        return size

    async def read(self, key: str, chunk_size: int = DEFAULT_READ_CHUNK) -> AsyncIterator[bytes]:
        # get_blob fetches the metadata, so `blob` carries the generation and size every ranged read below uses.
        blob = await anyio.to_thread.run_sync(self._bucket.get_blob, self.prefix + key)
        if blob is None:
            raise BlobNotFound(key)
        size: int = blob.size
        position = 0
        while position < size:
            end = min(position + chunk_size, size) - 1
            chunk = await self._download(blob, key, position, end)
            if not chunk:
                raise EOFError(f"blob {key!r} ended at byte {position} of {size}")
            position += len(chunk)
            yield chunk

    async def read_range(
        self, key: str, start: int, end: int, chunk_size: int = DEFAULT_READ_CHUNK
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        blob = await anyio.to_thread.run_sync(self._bucket.get_blob, self.prefix + key)
        if blob is None:
            raise BlobNotFound(key)
        stop: int = min(end, blob.size)
        position = start
        while position < stop:
            chunk = await self._download(blob, key, position, min(position + chunk_size, stop) - 1)
            if not chunk:
                raise EOFError(f"blob {key!r} ended at byte {position} of {stop}")
            position += len(chunk)
            yield chunk

    async def read_prefix(self, key: str, max_bytes: int) -> bytes:
        if max_bytes <= 0:
            return b""
        try:
            return await self._download(self._bucket.blob(self.prefix + key), key, 0, max_bytes - 1)
        except RequestRangeNotSatisfiable:
            # A range on an empty object is unsatisfiable: its prefix is simply empty.
            return b""

    async def delete(self, key: str) -> None:
        blob = self._bucket.blob(self.prefix + key)
        with contextlib.suppress(NotFound):
            await anyio.to_thread.run_sync(blob.delete)

    async def exists(self, key: str) -> bool:
        found: bool = await anyio.to_thread.run_sync(self._bucket.blob(self.prefix + key).exists)
        return found

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._bucket.reload)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._client.close)

    async def _download(self, blob: Any, key: str, start: int, end: int) -> bytes:
        """Bytes `start`..`end` inclusive. Checksums are off because a range carries none to check against."""
        try:
            data: bytes = await anyio.to_thread.run_sync(
                lambda: blob.download_as_bytes(start=start, end=end, checksum=None)
            )
        except NotFound as exc:
            raise BlobNotFound(key) from exc
        return data


def _make_client(project: str) -> Any:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client(project=project or None)


def _abandon(writer: BlobWriter, blob: Any, finalizing: bool) -> None:
    """Cancel the resumable session. If the failure came while sending the final piece, the server may have
    committed the object before the error reached us, so delete whatever is at the key too. Cleanup errors are
    logged, not raised: the caller re-raises the original failure."""
    try:
        writer.terminate()
    except _CLEANUP_ERRORS:
        logger.warning("could not cancel the resumable upload of %s", blob.name, exc_info=True)
    if not finalizing:
        return
    try:
        blob.delete()
    except NotFound:
        pass
    except _CLEANUP_ERRORS:
        logger.warning("could not delete the partial upload of %s", blob.name, exc_info=True)
