"""Cutting a batch's input into chunks of `per_chunk` records, by byte offsets, in one streamed pass.

Records are counted as files/jsonl.py counts them: physical lines numbered from 1, blank or whitespace-only lines
skipped but counted. A span covers whole lines, blank ones included, and spans are contiguous, so a chunk's runner
can read exactly its bytes (`BlobStore.read_range`) and number its lines from `first_line` without seeing the rest
of the file. Memory is one read chunk plus a flag for the line that chunk ended in.
"""

from __future__ import annotations

from dataclasses import dataclass

from portico.blob.base import BlobStore

# JSON's whitespace, as the upload validator judges blank lines (`\n` ends the line itself).
WHITESPACE = b" \t\r"


@dataclass(frozen=True)
class Span:
    index: int
    first_line: int
    line_count: int
    start: int
    end: int


class Splitter:
    def __init__(self, per_chunk: int) -> None:
        self.per_chunk = per_chunk
        self.spans: list[Span] = []
        self._fed = 0  # bytes fed before the current piece
        self._line_no = 1  # physical number of the line being read
        self._pending_record = False  # the unfinished line holds something other than whitespace
        self._start = 0
        self._first_line = 1
        self._records = 0

    def feed(self, data: bytes) -> None:
        position = 0
        while (newline := data.find(b"\n", position)) >= 0:
            record = self._pending_record or bool(data[position:newline].strip(WHITESPACE))
            self._pending_record = False
            self._line_ended(record, self._fed + newline + 1)
            position = newline + 1
        if data[position:].strip(WHITESPACE):
            self._pending_record = True
        self._fed += len(data)

    def finish(self) -> list[Span]:
        """The spans, once every byte was fed. A last line without a newline is a record too."""
        if self._pending_record:
            self._records += 1
            self._pending_record = False
        if self._records:
            self._close(self._fed)
        return self.spans

    def _line_ended(self, record: bool, end: int) -> None:
        self._line_no += 1
        if record:
            self._records += 1
            if self._records == self.per_chunk:
                self._close(end)

    def _close(self, end: int) -> None:
        self.spans.append(Span(len(self.spans), self._first_line, self._records, self._start, end))
        self._start, self._first_line, self._records = end, self._line_no, 0


async def split(blobs: BlobStore, key: str, per_chunk: int) -> list[Span]:
    splitter = Splitter(per_chunk)
    async for piece in blobs.read(key):
        splitter.feed(piece)
    return splitter.finish()
