"""Multipart forms relayed byte for byte to an OpenAI-compatible upstream (image edits and variations, audio
transcriptions and translations).

The form goes upstream as it arrives from the caller: nothing waits for the whole upload, and nothing holds it in
memory. Each chunk is also appended to an unlinked temporary file, so when an attempt fails (a 429 to retry, a 503
to fall back from) the next one replays the file and then carries on with the caller's stream where it had got to.
The size cap is enforced on the bytes as they arrive (413), and a declared Content-Length past it is refused before
any upstream is contacted.

The form is watched, not rebuilt: only its small `model` field is read on the way, for the request log. A config's
`override_params` therefore do not apply to forms.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.observe import Trace
from gateway.route import Route
from portico.context import CallContext
from portico.errors import InvalidRequest, PayloadTooLarge, PorticoError

CHUNK_BYTES = 64 * 1024
# Fields read on the way for the request log, and the most of each that is kept.
WATCHED_FIELDS = frozenset({"model"})
MAX_WATCHED_BYTES = 256


class FieldWatcher:
    """Reads the small `WATCHED_FIELDS` out of a multipart stream fed chunk by chunk. A malformed form is not its
    business (the upstream judges the form): it simply stops watching."""

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, str] = {}
        self._name: str | None = None
        self._header = bytearray()
        self._header_value = bytearray()
        self._value = bytearray()
        callbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }
        self._parser: MultipartParser | None = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def feed(self, chunk: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self._parser = None

    def _on_part_begin(self) -> None:
        self._name = None
        self._value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._header_value))
            name = options.get(b"name")
            # A file part is never watched, whatever its name.
            self._name = name.decode("utf-8", "replace") if name and b"filename" not in options else None
        self._header.clear()
        self._header_value.clear()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name in WATCHED_FIELDS and len(self._value) < MAX_WATCHED_BYTES:
            self._value += data[start:end][: MAX_WATCHED_BYTES - len(self._value)]

    def _on_part_end(self) -> None:
        if self._name in WATCHED_FIELDS:
            self.fields[self._name] = self._value.decode("utf-8", "replace").strip()


class FormBody:
    """The caller's form as a `RawBody`: every `chunks()` iteration yields it whole, from its first byte."""

    def __init__(self, source: AsyncIterator[bytes], content_type: str, length: int | None, max_bytes: int) -> None:
        self.content_type = content_type
        self.length = length
        self.watcher = FieldWatcher(_boundary(content_type))
        # Set when the caller's stream went over the cap or broke off: every attempt after that fails with it.
        self.failure: PorticoError | None = None
        self._source = source
        self._max_bytes = max_bytes
        self._spool: BinaryIO | None = None
        self._spooled = 0
        self._exhausted = False
        # One reader of the source and the spool at a time: an attempt abandoned by aiohttp (its upstream answered
        # early) may still be inside `_next` while the next attempt starts.
        self._lock = asyncio.Lock()
        # The source is pulled in its own task, shielded: cancelling an async generator's `__anext__` would end the
        # generator and lose the rest of the upload. A cancelled attempt leaves the pull for the next one.
        self._pending: asyncio.Future[bytes | None] | None = None

    @property
    def model(self) -> str | None:
        return self.watcher.fields.get("model") or None

    async def chunks(self) -> AsyncIterator[bytes]:
        position = 0
        while True:
            async with self._lock:
                chunk = await self._next(position)
            if chunk is None:
                return
            position += len(chunk)
            yield chunk

    async def _next(self, position: int) -> bytes | None:
        if self.failure is not None:
            raise self.failure
        if position < self._spooled:
            return await anyio.to_thread.run_sync(self._read_at, position, self._spooled - position)
        if self._exhausted:
            return None
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._pull())
        try:
            chunk = await asyncio.shield(self._pending)
        except ClientDisconnect:
            self.failure = InvalidRequest("The caller stopped sending the form.", param="file", code="incomplete_body")
            raise self.failure from None
        self._pending = None
        if chunk is None:
            self._exhausted = True
            return None
        if self._spooled + len(chunk) > self._max_bytes:
            self.failure = PayloadTooLarge(
                f"The form exceeds the limit of {self._max_bytes} bytes.", param="file", code="too_large"
            )
            raise self.failure
        offset, self._spooled = self._spooled, self._spooled + len(chunk)
        # Not cancellable (anyio's default): the write completes even if this attempt is abandoned meanwhile.
        await anyio.to_thread.run_sync(self._write_at, offset, chunk)
        self.watcher.feed(chunk)
        return chunk

    async def _pull(self) -> bytes | None:
        async for chunk in self._source:
            if chunk:  # Starlette ends a request stream with an empty chunk
                return chunk
        return None

    def _write_at(self, offset: int, chunk: bytes) -> None:
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by aclose
        self._spool.seek(offset)
        self._spool.write(chunk)

    def _read_at(self, position: int, available: int) -> bytes:
        assert self._spool is not None
        self._spool.seek(position)
        return self._spool.read(min(CHUNK_BYTES, available))

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        async with self._lock:
            if self._spool is not None:
                await anyio.to_thread.run_sync(self._spool.close)
                self._spool = None


def _boundary(content_type: str) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            "Send this request as multipart/form-data, with the fields OpenAI documents for it.",
            param="file",
            code="invalid_content_type",
        )
    return boundary


class FormCall(BaseModel):
    """A multipart request to relay, where to send it, and the trace it belongs to."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    form: FormBody
    route: Route
    trace: Trace


async def read_form(request: Request, ctx: CallContext) -> FormCall:
    cap = ctx.settings.media_max_bytes
    declared = request.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None
    if length is not None and length > cap:
        raise PayloadTooLarge(f"The form exceeds the limit of {cap} bytes.", param="file", code="too_large")
    form = FormBody(request.stream(), request.headers.get("content-type", ""), length, cap)
    return FormCall(form=form, route=Route.from_headers(request.headers), trace=Trace.from_headers(request.headers))
