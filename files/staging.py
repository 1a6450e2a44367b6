"""Streaming a file's bytes into the blob store, checking them on the way.

Every path that brings bytes in (multipart upload, one-time upload URL, MCP inline text) goes through `stage`: it
counts against the size cap, hashes, and validates `batch`/`fine-tune` JSONL line by line while the bytes flow, so a
bad or oversized file is refused before it is fully received. On any refusal the blob store discards what it had
written: nothing is left behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from files.jsonl import JsonlLineError, JsonlValidator, validator_for
from files.models import StagedUpload, UploadPurpose
from portico.blob.base import BlobStore
from portico.errors import InvalidRequest, PayloadTooLarge
from portico.ids import blob_key, new_id


def check_purpose(purpose: str | None) -> str:
    allowed = [p.value for p in UploadPurpose]
    if not purpose:
        raise InvalidRequest(f"'purpose' is required; one of {allowed}.", param="purpose", code="missing_field")
    if purpose not in allowed:
        raise InvalidRequest(f"'purpose' must be one of {allowed}, not '{purpose}'.", param="purpose", code="invalid")
    return purpose


def clean_filename(filename: str | None) -> str:
    """The last path component only: a filename is a label, never a path on our side."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise InvalidRequest("The file part needs a filename.", param="file", code="missing_filename")
    return name[:255]


def jsonl_error(error: JsonlLineError) -> InvalidRequest:
    return InvalidRequest(f"Invalid JSONL: {error.message}", param="file", code=error.rule)


class _Meter:
    """Counts, hashes and (optionally) validates the chunks passing through it."""

    def __init__(self, max_bytes: int, validator: JsonlValidator | None) -> None:
        self.max_bytes = max_bytes
        self.validator = validator
        self.size = 0
        self.digest = hashlib.sha256()
        self.line_count: int | None = None

    async def watch(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise PayloadTooLarge(
                    f"The file exceeds the upload limit of {self.max_bytes} bytes.", param="file", code="too_large"
                )
            self.digest.update(chunk)
            if self.validator is not None:
                try:
                    self.validator.feed(chunk)
                except JsonlLineError as error:
                    raise jsonl_error(error) from None
            yield chunk
        # Checked before the source is exhausted, so a bad last line aborts the write instead of being stored.
        self.line_count = _finish(self.validator)


async def stage(
    blobs: BlobStore,
    workspace_id: str,
    chunks: AsyncIterable[bytes],
    *,
    filename: str,
    purpose: str | None,
    max_bytes: int,
) -> StagedUpload:
    """Write `chunks` to a fresh blob. With `purpose` known, JSONL is validated in flight; otherwise later, by
    `validate_staged`, once the purpose arrives (a multipart form may send it after the file)."""
    file_id = new_id("file-")
    key = blob_key("files", f"{workspace_id}/{file_id}")
    validator = validator_for(purpose) if purpose else None
    meter = _Meter(max_bytes, validator)
    await blobs.write(key, meter.watch(chunks))
    return StagedUpload(
        filename=filename,
        purpose=purpose or "",
        blob_key=key,
        file_id=file_id,
        bytes=meter.size,
        sha256=meter.digest.hexdigest(),
        line_count=meter.line_count,
        validated=purpose is not None,
    )


def _finish(validator: JsonlValidator | None) -> int | None:
    if validator is None:
        return None
    try:
        return validator.finish()
    except JsonlLineError as error:
        raise jsonl_error(error) from None


async def validate_staged(blobs: BlobStore, staged: StagedUpload) -> StagedUpload:
    """Validate a blob staged before its purpose was known, by streaming it back through the JSONL rules."""
    if staged.validated:
        return staged
    validator = validator_for(staged.purpose)
    if validator is None:
        return staged.model_copy(update={"validated": True})
    async for chunk in blobs.read(staged.blob_key):
        try:
            validator.feed(chunk)
        except JsonlLineError as error:
            raise jsonl_error(error) from None
    return staged.model_copy(update={"validated": True, "line_count": _finish(validator)})
