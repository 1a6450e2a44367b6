"""Bedrock batch files in S3: staging the converted input, reading the job's `.out` lines back.

boto3 is synchronous: uploads run in a worker thread (`upload_fileobj`, multipart past its threshold), and output is
read by a generator the caller drives from a worker thread, `READ_CHUNK` bytes at a time. Credentials are the
virtual key's; the endpoint is `Settings.batch.s3_endpoint_url` when set (MinIO, moto), else AWS in the key's
region. S3's own refusals (a missing bucket, access denied) are final; connection trouble and 5xx are transient.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from batch.native.base import ProviderRefused, ProviderUnavailable
from batch.native.lines import split_lines
from portico.errors import InvalidRequest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from gateway.targets import ResolvedTarget
    from portico.settings import Settings

READ_CHUNK = 1024 * 1024
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_TRANSIENT = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"})


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, param: str) -> S3Uri:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not BUCKET.fullmatch(bucket):
            raise InvalidRequest(f"'{uri}' is not an s3://bucket/prefix URI.", param=param, code="invalid_s3_uri")
        return cls(bucket, key)

    def child(self, *parts: str) -> S3Uri:
        prefix = self.key.rstrip("/")
        return S3Uri(self.bucket, "/".join([prefix, *parts] if prefix else list(parts)))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def check_bucket(bucket: str, param: str) -> str:
    if not BUCKET.fullmatch(bucket):
        raise InvalidRequest(f"'{bucket}' is not a valid S3 bucket name.", param=param, code="invalid_s3_bucket")
    return bucket


def s3_client(target: ResolvedTarget, settings: Settings) -> S3Client:
    secrets = target.secrets
    return _client(
        str(secrets.get("awsAccessKeyId") or ""),
        str(secrets.get("awsSecretAccessKey") or ""),
        str(secrets.get("awsSessionToken") or "") or None,
        str(target.settings.get("awsRegion") or ""),
        settings.batch.s3_endpoint_url or None,
    )


@functools.lru_cache(maxsize=32)
def _client(key_id: str, secret: str, token: str | None, region: str, endpoint: str | None) -> S3Client:
    # Building a client costs tens of milliseconds; boto3 clients are thread safe, so one per credential serves all.
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"mode": "standard"}),
    )


@contextmanager
def s3_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _TRANSIENT:
            raise ProviderUnavailable(f"{action}: {error}") from error
        raise ProviderRefused(f"{action}: {error}") from error
    except BotoCoreError as error:
        raise ProviderUnavailable(f"{action}: {error}") from error


async def upload(client: S3Client, source: IO[bytes], uri: S3Uri) -> None:
    source.seek(0)
    with s3_errors(f"Staging the batch input at {uri} failed"):
        await asyncio.to_thread(client.upload_fileobj, source, uri.bucket, uri.key)


def read_lines(client: S3Client, uri: S3Uri) -> Iterator[bytes]:
    """The object's non-blank lines; none if it does not exist (a job stopped before writing any). Synchronous:
    drive it from a worker thread."""
    try:
        response = client.get_object(Bucket=uri.bucket, Key=uri.key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
            return
        raise
    body = response["Body"]
    try:
        yield from split_lines(iter(lambda: body.read(READ_CHUNK), b""))
    finally:
        body.close()
