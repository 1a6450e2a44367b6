"""How the job simulators reach their S3 stand-in (moto's server in tests, any S3-compatible store in a demo).

boto3 is synchronous, so every call runs in a worker thread. Input is read in chunks and split into lines, and
output is spooled to a temporary file (in memory up to `SPOOL_BYTES`, on disk beyond) before it is uploaded, so
memory stays flat whatever a job's size. Every S3 failure surfaces as `S3Unreadable` with a message a job can
report as its failure reason.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from providers.simulators.behaviour import InvalidRequest

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

READ_CHUNK = 256 * 1024
SPOOL_BYTES = 8 * 1024 * 1024
# The S3Uri pattern of botocore's bedrock service model; the bucket part is S3's naming rule.
_S3_URI = re.compile(r"s3://([a-z0-9][-.a-z0-9]{1,61}[a-z0-9])(?:/([-!_*'().a-zA-Z0-9/]*))?")
# The environment variables boto3 itself reads for an endpoint when none is passed.
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class S3Unreadable(Exception):
    """An S3 object or bucket the job needs cannot be read or written."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: object, field: str) -> S3Uri:
        match = _S3_URI.fullmatch(uri) if isinstance(uri, str) else None
        if match is None:
            raise InvalidRequest(f"{field} must be an s3://bucket/key URI, got {uri!r}")
        return cls(match[1], match[2] or "")

    @property
    def name(self) -> str:
        """The last path segment: an input file's name, which its output file is named after."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def child(self, *parts: str) -> S3Uri:
        """This URI taken as a folder, with `parts` below it."""
        prefix = self.key.rstrip("/")
        return S3Uri(self.bucket, "/".join([prefix, *parts] if prefix else parts))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class S3Settings:
    # None: boto3's own AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. The credentials are moto's conventional dummies.
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str = "testing"
    secret_access_key: str = "testing"

    def configured(self) -> bool:
        """Whether an endpoint is known: without one boto3 would go to real AWS, which a simulator never does."""
        return bool(self.endpoint_url or any(os.environ.get(name) for name in _ENDPOINT_VARIABLES))


class S3Access:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._client: S3Client | None = None

    @property
    def client(self) -> S3Client:
        # Built on first use (tens of milliseconds); boto3 clients are thread safe, so one serves every thread.
        if self._client is None:
            self._client = boto3.client(
                "s3",
                endpoint_url=self.settings.endpoint_url,
                region_name=self.settings.region,
                aws_access_key_id=self.settings.access_key_id,
                aws_secret_access_key=self.settings.secret_access_key,
                config=Config(retries={"mode": "standard"}),
            )
        return self._client

    async def input_files(self, uri: S3Uri) -> list[S3Uri]:
        """The object `uri` names, or else the ``.jsonl`` objects under it taken as a folder, in key order."""
        try:
            if uri.key and not uri.key.endswith("/"):
                head = await asyncio.to_thread(self._exists, uri)
                if head:
                    return [uri]
            keys = await asyncio.to_thread(self._jsonl_keys, uri.child(""))
        except (BotoCoreError, ClientError) as error:
            raise S3Unreadable(f"cannot read {uri}: {error}") from error
        if not keys:
            raise S3Unreadable(f"no input at {uri}: neither an object nor a folder holding .jsonl files")
        return [S3Uri(uri.bucket, key) for key in keys]

    async def check_bucket(self, uri: S3Uri) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=uri.bucket)
        except (BotoCoreError, ClientError) as error:
            raise S3Unreadable(f"cannot write to {uri}: {error}") from error

    async def lines(self, uri: S3Uri) -> AsyncGenerator[bytes, None]:
        """The object's non-blank lines without their line ends, read `READ_CHUNK` bytes at a time. Consume it
        under `contextlib.aclosing` when stopping early, so the connection is released at once."""
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=uri.bucket, Key=uri.key)
        except (BotoCoreError, ClientError) as error:
            raise S3Unreadable(f"cannot read {uri}: {error}") from error
        body = response["Body"]
        tail = b""
        try:
            while chunk := await self._read(body, uri):
                *complete, tail = (tail + chunk).split(b"\n")
                for line in complete:
                    if line.strip():
                        yield line.rstrip(b"\r")
        finally:
            body.close()
        if tail.strip():
            yield tail.rstrip(b"\r")

    @staticmethod
    async def _read(body: StreamingBody, uri: S3Uri) -> bytes:
        try:
            return await asyncio.to_thread(body.read, READ_CHUNK)
        except (BotoCoreError, ClientError) as error:
            raise S3Unreadable(f"cannot read {uri}: {error}") from error

    async def upload(self, spool: IO[bytes], uri: S3Uri) -> None:
        spool.seek(0)
        try:
            await asyncio.to_thread(self.client.upload_fileobj, spool, uri.bucket, uri.key)
        except (BotoCoreError, ClientError) as error:
            raise S3Unreadable(f"cannot write {uri}: {error}") from error

    async def put(self, data: bytes, uri: S3Uri) -> None:
        with spooled() as spool:
            spool.write(data)
            await self.upload(spool, uri)

    def _exists(self, uri: S3Uri) -> bool:
        try:
            self.client.head_object(Bucket=uri.bucket, Key=uri.key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def _jsonl_keys(self, folder: S3Uri) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=folder.bucket, Prefix=folder.key)
        keys = (item["Key"] for page in pages for item in page.get("Contents", ()))
        return sorted(key for key in keys if key.endswith(".jsonl"))


def spooled() -> tempfile.SpooledTemporaryFile[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
