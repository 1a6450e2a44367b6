"""A finished provider job's results, as Portico files: the output and error JSONL and their `batch_output` rows.

Every request of a completed or expired batch gets exactly one line: the sink remembers the custom_ids the
provider answered, and `fill_unanswered` reads the input again to write an error line for each one it left out
(Bedrock's PartiallyCompleted may mean "not processed in time", an expired job stops part way). A cancelled batch
keeps only what ran, as OpenAI's do. Remembering custom_ids costs memory per request, not per byte of output.

Everything here is deterministic in the batch id: the file ids, their blob keys, and each line's id. A collect
that runs twice (a worker died between writing the files and completing the batch) overwrites the same blobs and
finds the rows already there, so a batch never has two output files.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from batch.native.base import Collected, StoredLines
from batch.native.lines import Json, LineSplitter, spool, unanswered_line, write_line
from portico.context import Services
from portico.db.batches import BatchRow
from portico.db.models import File
from portico.ids import blob_key, now

READ_CHUNK = 1024 * 1024


def output_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}\n{kind}".encode()).hexdigest()[:24]


class OutputSink:
    """Collects OpenAI output lines (successes) and error lines (failures) in two spools, counting both."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.output = spool()
        self.errors = spool()
        self.completed = 0
        self.failed = 0
        self.seen: set[str] = set()

    def success(self, line: Json) -> None:
        write_line(self.output, line)
        self.completed += 1
        self.seen.add(str(line["custom_id"]))

    def failure(self, line: Json) -> None:
        write_line(self.errors, line)
        self.failed += 1
        self.seen.add(str(line["custom_id"]))

    def passthrough(self, line: bytes, *, failed: bool) -> None:
        """A line already in OpenAI's format (OpenAI's own output files)."""
        (self.errors if failed else self.output).write(line + b"\n")
        if failed:
            self.failed += 1
        else:
            self.completed += 1
        self.seen.add(str(json.loads(line).get("custom_id")))

    def take_input(self, lines: Iterable[bytes], code: str, message: str) -> None:
        """Error lines for the input requests (raw batch input lines) the provider gave no result for."""
        for raw in lines:
            custom_id = str(json.loads(raw)["custom_id"])
            if custom_id not in self.seen:
                self.failure(unanswered_line(self.batch_id, custom_id, code, message))

    def discard(self) -> None:
        self.output.close()
        self.errors.close()

    async def store(self, services: Services, workspace_id: str) -> Collected:
        try:
            output = await _store(services, workspace_id, self.batch_id, "output", self.output, self.completed)
            errors = await _store(services, workspace_id, self.batch_id, "error", self.errors, self.failed)
        finally:
            self.discard()
        return Collected(output=output, errors=errors)


async def fill_unanswered(services: Services, sink: OutputSink, source: File, code: str, message: str) -> None:
    splitter = LineSplitter()
    async for chunk in services.blobs.read(source.blob_key):
        await asyncio.to_thread(sink.take_input, list(splitter.feed(chunk)), code, message)
    sink.take_input(list(splitter.finish()), code, message)


async def _store(
    services: Services, workspace_id: str, batch_id: str, kind: str, source: IO[bytes], lines: int
) -> StoredLines | None:
    if lines == 0:
        return None
    key = blob_key("files", f"{workspace_id}/{output_file_id(batch_id, kind)}")
    digest = hashlib.sha256()
    source.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await asyncio.to_thread(source.read, READ_CHUNK):
            digest.update(chunk)
            yield chunk

    size = await services.blobs.write(key, chunks())
    return StoredLines(key=key, bytes=size, sha256=digest.hexdigest(), lines=lines)


async def record_files(services: Services, row: BatchRow, collected: Collected) -> dict[str, str | None]:
    """The `batch_output` file rows for what was collected (created once); returns the batch's file id columns."""
    ids: dict[str, str | None] = {"output_file_id": None, "error_file_id": None}
    kinds = (("output_file_id", "output", collected.output), ("error_file_id", "error", collected.errors))
    for column, kind, stored in kinds:
        if stored is None:
            continue
        file_id = output_file_id(row.id, kind)
        await _ensure_row(services, row, file_id, f"{row.id}_{kind}.jsonl", stored)
        ids[column] = file_id
    return ids


async def _ensure_row(services: Services, row: BatchRow, file_id: str, filename: str, stored: StoredLines) -> None:
    values = {
        "filename": filename,
        "bytes": stored.bytes,
        "sha256": stored.sha256,
        "line_count": stored.lines,
        "blob_key": stored.key,
    }
    async with services.sessions() as session, session.begin():
        existing = (await session.execute(select(File).where(File.id == file_id))).scalar_one_or_none()
        if existing is not None:
            # A re-collect rewrote the same blob; the row follows what is there now.
            for name, value in values.items():
                setattr(existing, name, value)
            return
        session.add(
            File(
                id=file_id,
                workspace_id=row.workspace_id,
                purpose="batch_output",
                status="processed",
                created_at=now(),
                **values,
            )
        )


async def ensure_recorded(services: Services, row: BatchRow, collected: Collected) -> dict[str, str | None]:
    """`record_files`, tolerating a concurrent insert of the same row (two collects racing past the lock's TTL)."""
    try:
        return await record_files(services, row, collected)
    except IntegrityError:
        return await record_files(services, row, collected)
