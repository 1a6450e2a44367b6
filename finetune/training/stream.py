"""Converting a stored fine-tuning JSONL into the provider's JSONL as a stream, for upload as it is produced.

    summary = await convert_file(blobs, key, converter, lambda chunks: s3.write(dest, chunks))

`upload` receives an async iterator of converted bytes (chunks of about `chunk_bytes`, whole lines only) and must
consume it to the end; `BlobStore.write` is such a consumer. Memory is one input chunk, one pending line and one
output chunk, whatever the file's size. The first line the target cannot take raises `TrainingDataError` from inside
the iterator, so the consumer sees it mid-upload and (as `BlobStore.write` does) leaves nothing behind; no summary
is returned then. Lines are numbered like `files/jsonl.py` numbers them: 1-based physical lines, blank lines
skipped but counted, so an error's line number matches the user's file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from files.jsonl import DEFAULT_MAX_LINE_BYTES
from finetune.training.converters import LineConverter
from finetune.training.errors import TrainingDataError, bad_line
from portico.blob.base import BlobStore

DEFAULT_CHUNK_BYTES = 1024 * 1024
Upload = Callable[[AsyncIterator[bytes]], Awaitable[object]]


@dataclass(frozen=True)
class ConversionSummary:
    lines: int  # examples converted (blank lines are not examples)
    bytes: int  # size of the converted JSONL


@dataclass
class _Tally:
    lines: int = 0
    bytes: int = 0
    finished: bool = False


async def convert_file(
    blobs: BlobStore,
    key: str,
    converter: LineConverter,
    upload: Upload,
    *,
    param: str = "training_file",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ConversionSummary:
    """Stream `key` through `converter` into `upload`. `param` names the file in errors (`validation_file`…)."""
    tally = _Tally()
    chunks = _converted(blobs, key, converter, tally, param, chunk_bytes, max_line_bytes)
    async with contextlib.aclosing(chunks):
        await upload(chunks)
    if not tally.finished:
        # An upload that stopped early would have staged a truncated dataset: a bug in the caller, not the data.
        raise RuntimeError(f"the upload stopped reading converted {key!r} after {tally.lines} examples")
    return ConversionSummary(tally.lines, tally.bytes)


async def _converted(
    blobs: BlobStore,
    key: str,
    converter: LineConverter,
    tally: _Tally,
    param: str,
    chunk_bytes: int,
    max_line_bytes: int,
) -> AsyncGenerator[bytes, None]:
    out = bytearray()
    try:
        async with contextlib.aclosing(_lines(blobs.read(key), max_line_bytes)) as lines:
            async for line_no, raw in lines:
                if not raw.strip():
                    continue
                out += _encode(converter.convert(line_no, _parse(line_no, raw)))
                tally.lines += 1
                if len(out) >= chunk_bytes:
                    tally.bytes += len(out)
                    yield bytes(out)
                    out.clear()
        if tally.lines == 0:
            raise TrainingDataError("the file has no examples", param=param, code="empty_file")
    except TrainingDataError as problem:
        problem.param = param  # converters name the training file; the caller knows which file this is
        raise
    if out:
        tally.bytes += len(out)
        yield bytes(out)
    tally.finished = True


async def _lines(chunks: AsyncIterator[bytes], max_line_bytes: int) -> AsyncGenerator[tuple[int, bytes], None]:
    """Physical lines (without the newline) and their 1-based numbers, from chunks cut anywhere."""
    pending = bytearray()
    line_no = 0
    try:
        async for chunk in chunks:
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                pending += chunk[start:end]
                line_no += 1
                yield line_no, bytes(pending)
                pending.clear()
                start = end + 1
            pending += chunk[start:]
            if len(pending) > max_line_bytes:
                raise bad_line(line_no + 1, f"longer than {max_line_bytes} bytes", code="line_too_long")
    finally:
        # Stopping early (a bad line) must still close the store's reader, which holds a file or a connection.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    if pending:
        yield line_no + 1, bytes(pending)


def _parse(line_no: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as problem:
        raise bad_line(line_no, f"not a JSON line ({problem})", code="invalid_json") from None
    if not isinstance(value, dict):
        raise bad_line(line_no, "not a JSON object; each line is one fine-tuning example", code="not_an_object")
    return value


def _encode(line: dict[str, Any]) -> bytes:
    # Compact and UTF-8 as is: providers read JSON, and escaping non-ASCII would only grow the file.
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
