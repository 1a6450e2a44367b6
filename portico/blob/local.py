"""Blobs as files under one directory: the embedded default of `portico up`.

A write goes to a temp file beside its target and is renamed into place only once every chunk has arrived, so a
reader never sees a half-written object and a failed write leaves nothing but what was there before. Each file
operation runs in a worker thread so a slow disk never stalls the event loop; small chunks (a batch part arrives a
line at a time) are gathered to `WRITE_BUFFER` bytes per hop, since a hop costs far more than writing a line.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from portico.blob.base import DEFAULT_READ_CHUNK, BlobNotFound, check_range

WRITE_BUFFER = 256 * 1024


class LocalBlobStore:
    """Keys map to relative paths under `root`; a "/" in a key makes a subdirectory."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        """The file behind `key`. Keys are generated, but this is the last line before the filesystem, so anything
        that could climb out of `root` (an absolute path, a `..` segment) is refused rather than trusted."""
        segments = key.split("/")
        if not key or key.startswith("/") or "\0" in key or any(s in ("", ".", "..") for s in segments):
            raise ValueError(f"invalid blob key {key!r}: relative '/'-separated names only, no '.' or '..' segments")
        return self.root.joinpath(*segments)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path_for(key)
        # Same directory as the target, so the final rename never crosses a filesystem and stays atomic.
        temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        file = await anyio.to_thread.run_sync(temp.open, "xb")
        size = 0
        pending = bytearray()
        try:
            async for chunk in chunks:
                pending += chunk
                size += len(chunk)
                if len(pending) >= WRITE_BUFFER:
                    full, pending = pending, bytearray()
                    await anyio.to_thread.run_sync(file.write, full)
            if pending:
                await anyio.to_thread.run_sync(file.write, pending)
            await anyio.to_thread.run_sync(file.close)
            await anyio.to_thread.run_sync(os.replace, temp, target)
        except BaseException:
            # Shielded: a cancelled write must still remove its temp file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, file, temp)
            raise
        return size

    async def read(self, key: str, chunk_size: int = DEFAULT_READ_CHUNK) -> AsyncIterator[bytes]:
        file = await anyio.to_thread.run_sync(self._open_for_read, key)
        try:
            while chunk := await anyio.to_thread.run_sync(file.read, chunk_size):
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(file.close)

    async def read_range(
        self, key: str, start: int, end: int, chunk_size: int = DEFAULT_READ_CHUNK
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        file = await anyio.to_thread.run_sync(self._open_for_read, key)
        try:
            await anyio.to_thread.run_sync(file.seek, start)
            remaining = end - start
            while remaining > 0 and (chunk := await anyio.to_thread.run_sync(file.read, min(chunk_size, remaining))):
                remaining -= len(chunk)
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(file.close)

    async def read_prefix(self, key: str, max_bytes: int) -> bytes:
        def read_head() -> bytes:
            with self._open_for_read(key) as file:
                return file.read(max(max_bytes, 0))

        return await anyio.to_thread.run_sync(read_head)

    async def delete(self, key: str) -> None:
        # Empty subdirectories are left in place: removing them would race with a concurrent write into them.
        await anyio.to_thread.run_sync(lambda: self.path_for(key).unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.path_for(key).is_file)

    async def check(self) -> None:
        def ensure_writable_root() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "blob directory is not writable", str(self.root))

        await anyio.to_thread.run_sync(ensure_writable_root)

    async def aclose(self) -> None:
        return None

    def _open_for_read(self, key: str) -> BinaryIO:
        path = self.path_for(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlobNotFound(key) from exc


def _discard(file: BinaryIO, temp: Path) -> None:
    file.close()
    temp.unlink(missing_ok=True)
