"""One HTTP/1.1 connection of providers/http1.py's client: an asyncio protocol whose llhttp (httptools) parser
fills in the current answer, and the waits the client makes on it (head, each body piece, write room), each with
its own deadline."""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

MAX_HEAD_BYTES = 64 * 1024
# Reading pauses while more than this many body bytes wait unread, and resumes once the reader has taken them.
PAUSE_READING_AT = 1024 * 1024


class TransportError(Exception):
    """The upstream could not be reached, broke off, or sent something that is not HTTP/1.1. `bad_response` tells
    the last apart; `before_answer` is set when the connection died before any byte of the answer."""

    def __init__(self, message: str, *, bad_response: bool = False, before_answer: bool = False) -> None:
        super().__init__(message)
        self.bad_response = bad_response
        self.before_answer = before_answer


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Connection(asyncio.Protocol):
    """One keep-alive connection: the llhttp parser's callbacks fill the current answer; `_wait` sleeps until
    they (or the connection's loss, or a timer) have news."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writable = True
        self.closed = False
        self.idle_since = 0.0
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._reading_paused = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self._framed = False
        self._got_bytes = False
        self.error: TransportError | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass, hence the cast rather than a check).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:  # also raised for an exception in a callback below
            self.fail(TransportError(f"the answer is not valid HTTP/1.1 ({error})", bad_response=True))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.head_done and not self._framed:
                self.complete = True  # an answer without Content-Length or chunking ends when the connection does
            else:
                detail = f": {exc}" if exc else ""
                self.error = TransportError(
                    f"the connection closed before the answer was complete{detail}", before_answer=not self._got_bytes
                )
        self._writable = True
        self._wake()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    # --- llhttp callbacks ---------------------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise TransportError(f"the answer's headers exceed {MAX_HEAD_BYTES} bytes", bad_response=True)
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status >= 200:
            self._framed = any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers)
            self.head_done = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > PAUSE_READING_AT and not self._reading_paused and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim answer (103 Early Hints): the real one follows on this connection
            self.headers, self._head_bytes = [], 0
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # --- used by the client -------------------------------------------------------------------------------------

    def fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise self.error or TransportError("the connection closed before the request was sent", before_answer=True)
        self._transport.write(data)

    async def drain(self, deadline: float | None) -> None:
        while not self._writable and not self.closed:
            await self._wait(deadline)

    async def read_head(self, read_timeout: float | None, deadline: float | None) -> None:
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait(self._next_deadline(read_timeout, deadline))

    async def next_chunk(self, read_timeout: float | None, deadline: float | None) -> bytes | None:
        """The next piece of the body as it arrived, or None once the answer is complete."""
        while not self._chunks:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            await self._wait(self._next_deadline(read_timeout, deadline))
        chunk = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return chunk

    def _next_deadline(self, read_timeout: float | None, deadline: float | None) -> float | None:
        if read_timeout is None:
            return deadline
        until = self._loop.time() + read_timeout
        return until if deadline is None else min(until, deadline)

    async def _wait(self, deadline: float | None) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if deadline is not None:
            delay = deadline - self._loop.time()
            if delay <= 0:
                raise TimeoutError()
            timer = self._loop.call_later(delay, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
