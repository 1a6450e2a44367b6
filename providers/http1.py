"""The HTTP/1.1 transport under `providers.http.UpstreamClient`: keep-alive connections per origin, llhttp parsing.

Why not aiohttp's client: every provider call, every managed batch line, pays for the client. A 1 KB JSON request
through `UpstreamClient` costs ~40 µs of CPU on this transport and ~120-140 µs on aiohttp's client, JSON included
(`python bench/upstream_client.py` prints both, side by side against one nginx). aiohttp still serves the WebSocket
proxy (gateway/realtime.py), which is rare and long-lived.

What it does, and on purpose nothing more:

- One request at a time per connection; connections are kept alive per `Origin` and reused newest first. An idle
  one is dropped after `IDLE_SECONDS`, when the server closes it, or when the answer said `Connection: close`. A
  request on a reused connection that dies before any byte of the answer arrives is sent once more on a new
  connection when its body can be sent again (bytes): the server closed the idle connection as we wrote.
- Connects only to the addresses the caller's `Resolve` hands over (the SSRF guard vets them in providers/http.py),
  through the event loop's `sock_connect`, racing them as happy eyeballs does (http1_connect.py); TLS with the
  system's trust store (or the caller's context), SNI and hostname check.
- Request bodies: bytes, or an async iterator of bytes sent with the caller's Content-Length or else chunked, with
  write back-pressure. Answers framed by Content-Length, chunked encoding or the connection's close; gzip and
  deflate decoded; reading pauses while more than 1 MiB waits unread (http1_protocol.py).
- No redirects, cookies, proxies, HEAD or HTTP/2: providers/http.py says why the first three must never happen.

Timeouts: `connect` bounds resolving and connecting, `read` each wait for bytes, `total` the whole exchange.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from providers.http1_connect import connect_first
from providers.http1_protocol import Connection, TransportError

IDLE_SECONDS = 15.0
MAX_IDLE_PER_ORIGIN = 256
USER_AGENT = "portico"
COALESCE_BYTES = 64 * 1024

Body = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: scheme, host as the URL names it (no brackets), port."""

    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"


class MalformedHeader(ValueError):
    """A request header that cannot be sent as is: a line break in it, or a colon in its name."""


# The addresses (IP strings) a connection to this origin may use, in the order to try them.
Resolve = Callable[[Origin], Awaitable[Sequence[str]]]


class Answer:
    """An answer whose head has arrived; the body is read with `next_chunk`. `release` must be called once: it
    hands the connection back for reuse when the answer was read to its end, and closes it otherwise."""

    def __init__(self, client: Http1Client, origin: Origin, connection: Connection, timeouts: _Timeouts) -> None:
        self._client = client
        self._origin = origin
        self._connection = connection
        self._timeouts = timeouts
        self.status = connection.status
        self.raw_headers = connection.headers
        self._decoder = _decoder_for(connection.headers)
        self._released = False

    async def next_chunk(self) -> bytes | None:
        """The next decoded piece of the body, or None at its end."""
        chunk = await self._connection.next_chunk(self._timeouts.read, self._timeouts.deadline)
        if self._decoder is None:
            return chunk
        if chunk is None:
            rest, self._decoder = self._decoder.flush(), None
            return rest or None
        try:
            return self._decoder.decompress(chunk)
        except zlib.error as error:
            raise TransportError(f"the answer's compressed body is corrupt ({error})", bad_response=True) from None

    async def read(self) -> bytes:
        parts = []
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._client.release(self._origin, self._connection)


def _decoder_for(headers: list[tuple[bytes, bytes]]) -> zlib._Decompress | None:
    for name, value in headers:
        if name.lower() == b"content-encoding":
            coding = value.strip().lower()
            if coding in (b"gzip", b"x-gzip"):
                return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            if coding == b"deflate":
                return zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # zlib-wrapped, as servers send it
    return None


@dataclass(frozen=True, slots=True)
class _Timeouts:
    connect: float | None
    read: float | None
    deadline: float | None  # loop time by which the whole exchange must be over

    def connect_deadline(self, loop: asyncio.AbstractEventLoop) -> float | None:
        if self.connect is None:
            return self.deadline
        until = loop.time() + self.connect
        return until if self.deadline is None else min(until, self.deadline)


class Http1Client:
    """Connection pools per origin, at most `limit` requests in flight in all."""

    def __init__(
        self,
        resolve: Resolve,
        *,
        limit: int = 1024,
        idle_seconds: float = IDLE_SECONDS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._resolve = resolve
        self._slots = asyncio.Semaphore(limit)
        self._idle_seconds = idle_seconds
        self._idle: dict[Origin, list[Connection]] = {}
        self._swept_at = time.monotonic()
        # The system's trust store unless the caller gave a context (made on first use: loading it takes a while).
        self._tls = tls

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Body,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        total_timeout: float | None,
    ) -> Answer:
        """Send the request and wait for the answer's head. Raises TransportError, TimeoutError, or whatever
        `resolve` raises (the guard's refusals)."""
        loop = asyncio.get_running_loop()
        deadline = None if total_timeout is None else loop.time() + total_timeout
        timeouts = _Timeouts(connect_timeout, read_timeout, deadline)
        head = _head(origin, method, target, headers, body)
        # One connect budget (as aiohttp's `connect` timeout): waiting for a free slot, then resolving and
        # connecting when no idle connection is at hand. The total deadline bounds it too.
        connect_by = timeouts.connect_deadline(loop)
        async with asyncio.timeout_at(connect_by):
            await self._slots.acquire()
        try:
            connection = await self._exchange(origin, head, body, timeouts, connect_by)
        except BaseException:
            self._slots.release()
            raise
        return Answer(self, origin, connection, timeouts)

    async def _exchange(
        self, origin: Origin, head: bytes, body: Body, timeouts: _Timeouts, connect_by: float | None
    ) -> Connection:
        replayable = body is None or isinstance(body, bytes)
        while True:
            connection, reused = self._idle_connection(origin)
            if connection is None:
                connection = await self._connect(origin, connect_by)
            try:
                await _send(connection, head, body, timeouts.deadline)
                await connection.read_head(timeouts.read, timeouts.deadline)
                return connection
            except TransportError as error:
                connection.close()
                if reused and replayable and error.before_answer:
                    # The server let the idle connection go as we wrote: once more, on a new one, with a connect
                    # budget of its own (the failed attempt may have waited long for its answer).
                    connect_by = timeouts.connect_deadline(asyncio.get_running_loop())
                    continue
                raise
            except BaseException:
                connection.close()
                raise

    def _idle_connection(self, origin: Origin) -> tuple[Connection | None, bool]:
        idle = self._idle.get(origin)
        oldest_allowed = time.monotonic() - self._idle_seconds
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.idle_since >= oldest_allowed:
                connection.reset()
                return connection, True
            connection.close()
        return None, False

    async def _connect(self, origin: Origin, connect_by: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(connect_by):
            sock = await connect_first(await self._resolve(origin), origin.port)
            return await self._start(loop, sock, origin)

    async def _start(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, origin: Origin) -> Connection:
        """The protocol on a connected socket, after the TLS handshake for https."""
        connection = Connection(loop)
        try:
            await loop.create_connection(
                lambda: connection,
                sock=sock,
                ssl=self._tls_context() if origin.tls else None,
                server_hostname=origin.host if origin.tls else None,
            )
        except BaseException:
            sock.close()
            raise
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def release(self, origin: Origin, connection: Connection) -> None:
        self._slots.release()
        now = time.monotonic()
        if now - self._swept_at > self._idle_seconds:
            self._sweep(now)
        idle = self._idle.setdefault(origin, [])
        if connection.reusable and len(idle) < MAX_IDLE_PER_ORIGIN:
            connection.idle_since = now
            idle.append(connection)
        else:
            connection.close()

    def _sweep(self, now: float) -> None:
        """Close idle connections past their time, so origins no longer called do not keep sockets open."""
        self._swept_at = now
        for origin, idle in list(self._idle.items()):
            keep = [c for c in idle if not c.closed and now - c.idle_since <= self._idle_seconds]
            for connection in idle:
                if connection not in keep:
                    connection.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _head(origin: Origin, method: str, target: str, headers: Mapping[str, str], body: Body) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    given = set()
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise MalformedHeader(f"header {name!r} contains a line break or its name a colon")
        given.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in given:
        lines.append(f"Host: {origin.host_header()}")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {USER_AGENT}")
    if "accept" not in given:
        lines.append("Accept: */*")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: gzip, deflate")
    if isinstance(body, bytes):
        if "content-length" not in given:
            lines.append(f"Content-Length: {len(body)}")
    elif body is not None and "content-length" not in given:
        lines.append("Transfer-Encoding: chunked")
    elif body is None and method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    lines.append("\r\n")
    return "\r\n".join(lines).encode()


async def _send(connection: Connection, head: bytes, body: Body, deadline: float | None) -> None:
    if body is None:
        connection.write(head)
    elif isinstance(body, bytes):
        if len(body) < COALESCE_BYTES:
            connection.write(head + body)  # one write, one segment for the common small JSON body
        else:
            connection.write(head)
            connection.write(body)
    else:
        connection.write(head)
        chunked = b"transfer-encoding: chunked" in head.lower()
        async for piece in body:
            if piece:
                connection.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                await connection.drain(deadline)
        if chunked:
            connection.write(b"0\r\n\r\n")
    await connection.drain(deadline)
