"""Choose the blob store named by the settings: a table, so adding a backend is one line, not another branch."""

from __future__ import annotations

from collections.abc import Callable

from portico.blob.base import BlobStore
from portico.blob.gcs import GcsBlobStore
from portico.blob.local import LocalBlobStore
from portico.blob.s3 import S3BlobStore
from portico.settings import BlobBackend, Settings

_CONSTRUCTORS: dict[BlobBackend, Callable[[Settings], BlobStore]] = {
    BlobBackend.LOCAL: lambda settings: LocalBlobStore(settings.resolved_blob_dir()),
    BlobBackend.S3: lambda settings: S3BlobStore(settings.blob),
    BlobBackend.GCS: lambda settings: GcsBlobStore(settings.blob),
}


def open_blob_store(settings: Settings) -> BlobStore:
    """The configured store. Constructing one does no I/O; `check()` is what proves it reachable."""
    return _CONSTRUCTORS[settings.blob.backend](settings)
