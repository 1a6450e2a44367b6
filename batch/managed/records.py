"""A chunk's input lines, read from its own byte range of the input file and numbered as the planner numbered them
(physical lines from `first_line`; blank ones skipped but counted). Memory is one read chunk plus one line."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from batch.managed.split import WHITESPACE
from portico import json_codec
from portico.blob.base import BlobStore
from portico.db.batches import BatchChunk
from portico.errors import InvalidRequest


@dataclass(frozen=True)
class Record:
    line_no: int
    raw: bytes


@dataclass(frozen=True)
class LineRequest:
    """One input line as the runner sends it; `invalid` says why it cannot be sent at all."""

    line_no: int
    custom_id: str | None
    body: dict[str, Any]
    invalid: InvalidRequest | None = None


async def records(blobs: BlobStore, key: str, chunk: BatchChunk) -> AsyncGenerator[Record, None]:
    line_no = chunk.first_line
    pending = bytearray()
    async for piece in blobs.read_range(key, chunk.start_offset, chunk.end_offset):
        position = 0
        while (newline := piece.find(b"\n", position)) >= 0:
            pending += piece[position:newline]
            if pending.strip(WHITESPACE):
                yield Record(line_no, bytes(pending))
            pending.clear()
            line_no += 1
            position = newline + 1
        pending += piece[position:]
    if pending.strip(WHITESPACE):
        yield Record(line_no, bytes(pending))


def parse(record: Record) -> LineRequest:
    """The line's custom_id and body. Upload validation already checked every line, so a refusal here means the
    bytes changed underneath: the line fails alone, with the reason, rather than the whole chunk."""
    try:
        line = json_codec.loads(record.raw)
    except ValueError:
        line = None
    custom_id = line.get("custom_id") if isinstance(line, dict) else None
    body = line.get("body") if isinstance(line, dict) else None
    if not isinstance(custom_id, str) or not isinstance(body, dict):
        problem = InvalidRequest(
            f"line {record.line_no}: not a batch request line with a custom_id and a body object",
            code="invalid_batch_line",
        )
        return LineRequest(record.line_no, custom_id if isinstance(custom_id, str) else None, {}, problem)
    return LineRequest(record.line_no, custom_id, body)
