"""Blobs in an S3 bucket (or an S3-compatible store such as MinIO or moto) through boto3.

boto3 is synchronous, so every call runs in a worker thread; one client serves them all (boto3 clients are thread
safe). Writes are multipart uploads of `part_size` pieces, started only once a full part has arrived, so small
objects cost a single `PutObject` and memory never holds more than one part plus one incoming chunk. A failed
write aborts its multipart upload: S3 would otherwise keep (and bill) the orphaned parts indefinitely.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from portico.blob.base import DEFAULT_READ_CHUNK, BlobNotFound, check_range
from portico.settings import MIB, BlobSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

# S3 rejects multipart parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MIB
# One pooled connection per worker thread anyio may run at once (its default limit), so threads never queue on
# the pool or make urllib3 discard connections.
_MAX_POOL_CONNECTIONS = 40
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3BlobStore:
    backend = "s3"

    def __init__(self, settings: BlobSettings, client: S3Client | None = None) -> None:
        if not settings.bucket:
            raise ValueError("blob.bucket must be set for the s3 backend")
        if settings.part_size < MIN_PART_SIZE:
            raise ValueError(f"blob.part_size must be at least {MIN_PART_SIZE} bytes for S3 multipart uploads")
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.part_size = settings.part_size
        self._client = client or boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            region_name=settings.region,
            config=Config(max_pool_connections=_MAX_POOL_CONNECTIONS, retries={"mode": "standard"}),
        )

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        upload = _MultipartUpload(self._client, self.bucket, self.prefix + key)
        buffer = io.BytesIO()
        size = 0
        try:
            async for chunk in chunks:
                buffer.write(chunk)
                size += len(chunk)
                while buffer.tell() >= self.part_size:
                    part, buffer = _split(buffer, self.part_size)
                    await upload.send_part(part)
            remaining = buffer.tell()
            buffer.seek(0)
            if upload.upload_id is None:
                await upload.put_whole(buffer)
            else:
                if remaining:
                    await upload.send_part(buffer)
                await upload.complete()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await upload.abort()
            raise
        return size

    async def read(self, key: str, chunk_size: int = DEFAULT_READ_CHUNK) -> AsyncIterator[bytes]:
        full_key = self.prefix + key
        try:
            response = await anyio.to_thread.run_sync(lambda: self._client.get_object(Bucket=self.bucket, Key=full_key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise BlobNotFound(key) from exc
            raise
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, chunk_size):
                yield chunk
        finally:
            # Returns the connection to the pool even when the reader stops early.
            body.close()

    async def read_range(
        self, key: str, start: int, end: int, chunk_size: int = DEFAULT_READ_CHUNK
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        full_key = self.prefix + key
        if end <= start:
            # An empty slice still needs the object to exist, as every other read does.
            if not await self.exists(key):
                raise BlobNotFound(key)
            return
        ranged = f"bytes={start}-{end - 1}"
        try:
            response = await anyio.to_thread.run_sync(
                lambda: self._client.get_object(Bucket=self.bucket, Key=full_key, Range=ranged)
            )
        except ClientError as exc:
            # A range starting past the end is unsatisfiable: the slice is simply empty.
            if _error_code(exc) == "InvalidRange":
                return
            if _error_code(exc) in _MISSING_CODES:
                raise BlobNotFound(key) from exc
            raise
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def read_prefix(self, key: str, max_bytes: int) -> bytes:
        if max_bytes <= 0:
            return b""
        full_key = self.prefix + key

        def get_range() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=full_key, Range=f"bytes=0-{max_bytes - 1}")
            with response["Body"] as body:
                return body.read()

        try:
            return await anyio.to_thread.run_sync(get_range)
        except ClientError as exc:
            # A range on an empty object is unsatisfiable: its prefix is simply empty.
            if _error_code(exc) == "InvalidRange":
                return b""
            if _error_code(exc) in _MISSING_CODES:
                raise BlobNotFound(key) from exc
            raise

    async def delete(self, key: str) -> None:
        # DeleteObject succeeds on a missing key, as the protocol wants.
        await anyio.to_thread.run_sync(lambda: self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key))

    async def exists(self, key: str) -> bool:
        try:
            await anyio.to_thread.run_sync(lambda: self._client.head_object(Bucket=self.bucket, Key=self.prefix + key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    async def check(self) -> None:
        await anyio.to_thread.run_sync(lambda: self._client.head_bucket(Bucket=self.bucket))

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._client.close)


class _MultipartUpload:
    """One multipart upload, created lazily on the first full part."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    async def put_whole(self, body: io.BytesIO) -> None:
        """An object smaller than one part needs no multipart upload at all."""
        await anyio.to_thread.run_sync(lambda: self._client.put_object(Bucket=self.bucket, Key=self.key, Body=body))

    async def send_part(self, body: io.BytesIO) -> None:
        if self.upload_id is None:
            created = await anyio.to_thread.run_sync(
                lambda: self._client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            )
            self.upload_id = created["UploadId"]
        upload_id, number = self.upload_id, len(self._parts) + 1
        sent = await anyio.to_thread.run_sync(
            lambda: self._client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=body
            )
        )
        # ETag only: S3 verified any per-part checksum on upload, and naming checksums here would require the
        # upload to have been created with a checksum algorithm, which not every S3-compatible store supports.
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def complete(self) -> None:
        assert self.upload_id is not None
        upload_id, parts = self.upload_id, self._parts
        await anyio.to_thread.run_sync(
            lambda: self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        )

    async def abort(self) -> None:
        """Drop the uploaded parts. A failure here is logged, not raised: the caller re-raises the original error,
        and a bucket lifecycle rule for incomplete uploads is the backstop."""
        if self.upload_id is None:
            return
        upload_id = self.upload_id
        try:
            await anyio.to_thread.run_sync(
                lambda: self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            )
        except (ClientError, BotoCoreError):
            logger.warning("could not abort multipart upload %s of %s", upload_id, self.key, exc_info=True)


def _split(buffer: io.BytesIO, size: int) -> tuple[io.BytesIO, io.BytesIO]:
    """Cut `buffer` into its first `size` bytes, rewound for upload, and a new buffer holding the rest. Only the
    rest (less than one incoming chunk) is copied."""
    with buffer.getbuffer() as view:
        rest = io.BytesIO(view[size:])
    rest.seek(0, io.SEEK_END)
    buffer.truncate(size)
    buffer.seek(0)
    return buffer, rest


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
