"""A streaming `multipart/form-data` reader: parts come out as events while the body is still arriving.

Starlette's `request.form()` spools a whole upload to a temporary file before the handler sees it; here the file
part's bytes flow straight on to the blob store (through `files.staging`), so memory stays bounded and an oversized
or invalid upload is refused while it streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from email.message import Message

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from portico.errors import InvalidRequest

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class PartStart:
    name: str
    filename: str | None


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


@dataclass
class _Collector:
    """Turns the parser's synchronous callbacks into a list of events, drained after each body chunk."""

    events: list[Event] = field(default_factory=list)
    _header_field: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _headers: dict[str, str] = field(default_factory=dict)

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("utf-8", "replace")
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        message = Message()
        message["content-disposition"] = self._headers.get("content-disposition", "")
        name = message.get_param("name", header="content-disposition")
        filename = message.get_param("filename", header="content-disposition")
        self.events.append(
            PartStart(name=str(name) if name else "", filename=str(filename) if filename is not None else None)
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(PartData(bytes(data[start:end])))

    def on_part_end(self) -> None:
        self.events.append(PartEnd())


def boundary_of(content_type: str) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            "Send the upload as multipart/form-data with a 'file' part and a 'purpose' field.",
            param="file",
            code="invalid_content_type",
        )
    return boundary


async def multipart_events(body: AsyncIterable[bytes], content_type: str) -> AsyncIterator[Event]:
    collector = _Collector()
    callbacks = {name: getattr(collector, name) for name in dir(_Collector) if name.startswith("on_")}
    parser = MultipartParser(boundary_of(content_type), callbacks)  # type: ignore[arg-type]
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as error:
            raise InvalidRequest(f"Malformed multipart body: {error}", param="file", code="invalid_multipart") from None
        for event in collector.events:
            yield event
        collector.events.clear()
    parser.finalize()
    for event in collector.events:
        yield event


async def part_bytes(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The data of the current part, ending at its PartEnd."""
    async for event in events:
        if isinstance(event, PartEnd):
            return
        if isinstance(event, PartData):
            yield event.data


async def field_text(events: AsyncIterator[Event], name: str) -> str:
    value = bytearray()
    async for chunk in part_bytes(events):
        value += chunk
        if len(value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"Form field '{name}' is too long.", param=name, code="field_too_long")
    return value.decode("utf-8", "replace").strip()
