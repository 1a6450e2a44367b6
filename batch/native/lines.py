"""Line by line, both ways: a batch's OpenAI input converted into a provider's input file, and provider results
written as OpenAI output and error lines.

Memory stays flat whatever the file size. Bytes arrive in chunks and are split into lines here (`LineSplitter`);
converted lines go to spooled temporary files (in memory up to `SPOOL_BYTES`, on disk beyond) that are then
uploaded in chunks. The converting runs in a worker thread (`asyncio.to_thread`), one chunk at a time, so a large
file never blocks the event loop the API may share with the worker (`portico up`).

OpenAI output lines follow the batch output format: `{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}`; a failed request keeps its status and an OpenAI-style error body, as OpenAI writes it, and a
request that never ran has `error` instead of `response`. Line ids are derived from the batch and custom_id, so
collecting twice writes the same file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from batch.models import BatchError
from providers.translate.errors import TranslationError

SPOOL_BYTES = 8 * 1024 * 1024
# Past this many unconvertible lines the batch's errors say "and more"; the conversion still reads the whole file.
MAX_LINE_ERRORS = 20

Json = dict[str, Any]
# (custom_id, OpenAI request body) -> the provider's input line
LineConverter = Callable[[str, Json], Json]


def spool() -> tempfile.SpooledTemporaryFile[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


class LineSplitter:
    """Cuts a stream of chunks into its non-blank lines (without line ends)."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        *complete, self._tail = (self._tail + chunk).split(b"\n")
        return (line.rstrip(b"\r") for line in complete if line.strip())

    def finish(self) -> Iterator[bytes]:
        tail, self._tail = self._tail, b""
        return iter([tail.rstrip(b"\r")] if tail.strip() else [])


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()


class InputConverter:
    """OpenAI batch input lines → provider input lines in a spool. Lines that cannot be converted are gathered as
    batch errors naming the line; the caller refuses the batch if there are any (OpenAI fails a batch whose lines
    do not validate, before running any)."""

    def __init__(self, convert: LineConverter) -> None:
        self.convert = convert
        self.spool = spool()
        self.lines = 0
        self.errors: list[BatchError] = []
        self._splitter = LineSplitter()

    def feed(self, chunk: bytes) -> None:
        for line in self._splitter.feed(chunk):
            self._line(line)

    def finish(self) -> None:
        for line in self._splitter.finish():
            self._line(line)
        self.spool.seek(0)

    def _line(self, raw: bytes) -> None:
        self.lines += 1
        # Upload validation guarantees every line is an object with a string custom_id and an object body.
        record = json.loads(raw)
        try:
            converted = self.convert(record["custom_id"], record["body"])
        except TranslationError as error:
            self._refuse(error)
            return
        self.spool.write(json.dumps(converted, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def _refuse(self, error: TranslationError) -> None:
        if len(self.errors) < MAX_LINE_ERRORS:
            message = f"line {self.lines}: {error.message}"
            self.errors.append(BatchError(code="invalid_request", message=message, param=error.param, line=self.lines))


def line_id(batch_id: str, custom_id: str) -> str:
    return "batch_req_" + hashlib.sha256(f"{batch_id}\n{custom_id}".encode()).hexdigest()[:24]


def success_line(batch_id: str, custom_id: str, body: Json, request_id: str) -> Json:
    response = {"status_code": 200, "request_id": request_id, "body": body}
    return {"id": line_id(batch_id, custom_id), "custom_id": custom_id, "response": response, "error": None}


def failure_line(batch_id: str, custom_id: str, status: int, message: str, request_id: str) -> Json:
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    response = {"status_code": status, "request_id": request_id, "body": body}
    return {"id": line_id(batch_id, custom_id), "custom_id": custom_id, "response": response, "error": None}


def unanswered_line(batch_id: str, custom_id: str, code: str, message: str) -> Json:
    """A request that never got an answer (OpenAI writes these for expired batches): `error`, no `response`."""
    error = {"code": code, "message": message}
    return {"id": line_id(batch_id, custom_id), "custom_id": custom_id, "response": None, "error": error}


def write_line(target: IO[bytes], line: Json) -> None:
    target.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
