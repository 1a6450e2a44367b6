"""Cloud Storage access for the Vertex job simulators: read a JSONL object line by line, write one in pieces.

The simulated jobs read their inputs from and write their outputs to Cloud Storage, as Vertex does. With
``STORAGE_EMULATOR_HOST`` set (the library's own convention, also Portico's) the client talks to that emulator with
anonymous credentials; without it, to real Cloud Storage with application-default credentials. The client is
synchronous: callers run these functions in a worker thread. Both directions stream through 1 MiB pieces, so a job's
memory stays flat whatever the file size.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError

from providers.simulators.behaviour import InvalidRequest

# Resumable uploads take pieces in multiples of 256 KiB; 1 MiB keeps round trips few and buffers small.
PIECE = 1024 * 1024
EMULATOR_PROJECT = "portico-sim"


class StorageError(Exception):
    """An object could not be read or written; the message names its gs:// URI."""


def _storage_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    # resumable-media reports a failed upload (a missing bucket, say) with its own exception, outside api_core's
    # tree; requests' connection errors derive from OSError.
    from google.cloud.storage.exceptions import InvalidResponse

    return (GoogleAPIError, GoogleAuthError, InvalidResponse, OSError, *extra)


def split_uri(uri: str, field: str) -> tuple[str, str]:
    """``gs://bucket/object`` as (bucket, object); a 400 naming `field` otherwise."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise InvalidRequest(f"{field} must be a gs://bucket/object URI, got {uri!r}")
    return bucket, name


@functools.lru_cache(maxsize=4)
def _client(emulator: str | None) -> Any:
    # Imported here: google-cloud-storage takes a noticeable time to import, and only job simulators need it.
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if emulator:
        return storage.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return storage.Client()


def _blob(uri: str) -> Any:
    bucket, name = split_uri(uri, "uri")
    # Keyed by the emulator address, so a test that points the variable elsewhere gets a fresh client.
    return _client(os.environ.get("STORAGE_EMULATOR_HOST")).bucket(bucket).blob(name)


def read_lines(uri: str) -> Iterator[str]:
    """The object's lines without their line ends (blank lines included); StorageError if it cannot be read."""
    try:
        with _blob(uri).open("rt", encoding="utf-8", chunk_size=PIECE) as reader:
            for line in reader:
                yield line.rstrip("\r\n")
    except _storage_errors(UnicodeDecodeError) as error:
        raise StorageError(f"cannot read {uri}: {error}") from error


@contextmanager
def writing(uri: str) -> Iterator[IO[bytes]]:
    """A binary writer to `uri`. The object appears only when the block ends normally; on an error the upload is
    abandoned (best effort) and a storage failure raised as StorageError."""
    errors = _storage_errors()
    try:
        writer = _blob(uri).open("wb", chunk_size=PIECE, ignore_flush=True)
    except errors as error:
        raise StorageError(f"cannot write {uri}: {error}") from error
    try:
        yield writer
        writer.close()
    except BaseException as error:
        with contextlib.suppress(*errors):
            writer.terminate()
        if isinstance(error, errors):
            raise StorageError(f"cannot write {uri}: {error}") from error
        raise
