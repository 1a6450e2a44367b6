"""Vertex batch files in Cloud Storage: staging the converted input, reading the job's prediction lines back.

google-cloud-storage is synchronous: uploads run in a worker thread (resumable past the library's threshold), and
predictions are read by a generator the caller drives from a worker thread. Credentials are the virtual key's
OAuth token, the same one the Vertex API calls carry; with `STORAGE_EMULATOR_HOST` set the library talks to that
emulator instead (its own convention, which Portico's blob store follows too). Refusals (a missing bucket,
permission denied) are final; connection trouble and 5xx/429 are transient.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from google.api_core.exceptions import GoogleAPICallError, NotFound, RetryError, ServerError, TooManyRequests
from google.auth.exceptions import GoogleAuthError, TransportError

from batch.native.base import ProviderRefused, ProviderUnavailable
from portico.errors import InvalidRequest

BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
READ_CHUNK = 1024 * 1024
CONTENT_TYPE = "application/jsonl"


@dataclass(frozen=True)
class GcsUri:
    bucket: str
    name: str

    @classmethod
    def parse(cls, uri: str, param: str) -> GcsUri:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not BUCKET.fullmatch(bucket):
            raise InvalidRequest(f"'{uri}' is not a gs://bucket/prefix URI.", param=param, code="invalid_gcs_uri")
        return cls(bucket, name)

    def child(self, *parts: str) -> GcsUri:
        prefix = self.name.rstrip("/")
        return GcsUri(self.bucket, "/".join([prefix, *parts] if prefix else list(parts)))

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def check_bucket(bucket: str, param: str) -> str:
    if not BUCKET.fullmatch(bucket):
        raise InvalidRequest(
            f"'{bucket}' is not a valid Cloud Storage bucket name.", param=param, code="invalid_bucket"
        )
    return bucket


def gcs_client(project: str, token: str) -> Any:
    # Imported here: google-cloud-storage takes a noticeable time to import, and only Vertex batches need it.
    from google.cloud import storage
    from google.oauth2.credentials import Credentials

    return storage.Client(project=project, credentials=Credentials(token))  # type: ignore[no-untyped-call]


@contextmanager
def gcs_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (ServerError, TooManyRequests, RetryError, TransportError, OSError) as error:
        # requests' connection errors derive from OSError.
        raise ProviderUnavailable(f"{action}: {error}") from error
    except (GoogleAPICallError, GoogleAuthError) as error:
        raise ProviderRefused(f"{action}: {error}") from error


async def upload(client: Any, source: IO[bytes], uri: GcsUri) -> None:
    source.seek(0)
    blob = client.bucket(uri.bucket).blob(uri.name)
    with gcs_errors(f"Staging the batch input at {uri} failed"):
        await asyncio.to_thread(blob.upload_from_file, source, content_type=CONTENT_TYPE)


def prediction_lines(client: Any, directory: GcsUri) -> Iterator[bytes]:
    """Every line of every `predictions*.jsonl` under `directory` (Vertex promises no order between them).
    Synchronous: drive it from a worker thread."""
    prefix = directory.name.rstrip("/") + "/"
    try:
        names = sorted(blob.name for blob in client.list_blobs(directory.bucket, prefix=prefix))
    except NotFound:
        return
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if not (base.startswith("predictions") and base.endswith(".jsonl")):
            continue
        with client.bucket(directory.bucket).blob(name).open("rb", chunk_size=READ_CHUNK) as reader:
            for line in reader:
                if line.strip():
                    yield line.rstrip(b"\r\n")
