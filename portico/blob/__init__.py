"""Byte storage for files and batch I/O: one protocol, three backends (local directory, S3, GCS)."""

from portico.blob.base import BlobNotFound, BlobStore
from portico.blob.factory import open_blob_store

__all__ = ["BlobNotFound", "BlobStore", "open_blob_store"]
