"""Portico's HTTP/1.1 transport (providers/http1.py), through `UpstreamClient`, against a scripted server on
loopback that answers byte for byte as each test says: keep-alive and its edge cases, every way an answer can be
framed, bodies both ways, and the ways an upstream can fail. (tests/test_ssrf_client.py covers the guard, redirects,
cookies and timeouts against a real aiohttp server.)"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httptools
import pytest

from portico.errors import InvalidRequest
from providers.http import UpstreamClient, UpstreamUnreachable
from providers.http1 import Answer, Http1Client, Origin


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int  # which accepted connection (from 0) it came on


@dataclass
class _Parsed:
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)
    done: list[tuple[str, bytes, dict[str, str], bytes]] = field(default_factory=list)
    parser: httptools.HttpRequestParser | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        method = self.parser.get_method().decode()
        self.done.append((method, self.url, self.headers, b"".join(self.body)))
        self.url, self.headers, self.body = b"", {}, []


# Writes the answer to one request; returns False to close the connection afterwards.
Script = Callable[[Received, asyncio.StreamWriter], Awaitable[bool]]


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, path: str = "/x") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number, self.connections = self.connections, self.connections + 1
        parsed = _Parsed()
        parsed.parser = httptools.HttpRequestParser(parsed)
        try:
            while data := await reader.read(65536):
                parsed.parser.feed_data(data)
                while parsed.done:
                    method, url, headers, body = parsed.done.pop(0)
                    request = Received(method, url.decode(), headers, body, number)
                    self.received.append(request)
                    if not await self.script(request, writer):
                        return
        except (ConnectionError, httptools.HttpParserError):
            return
        finally:
            writer.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def ok(request: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(b"ok " + request.body))
    return True


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient() as client:
        yield client


async def fetch(client: UpstreamClient, url: str, **kwargs: object) -> tuple[int, bytes]:
    kwargs.setdefault("timeout", 5)
    async with client.request(kwargs.pop("method", "POST"), url, trusted=True, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.read()


async def test_connections_are_kept_alive_and_reused(upstream: UpstreamClient) -> None:
    async with ScriptedServer(ok) as server:
        answers = [await fetch(upstream, server.url(), data=f"n{n}".encode()) for n in range(5)]
    assert answers == [(200, f"ok n{n}".encode()) for n in range(5)]
    assert server.connections == 1
    assert [r.headers["content-length"] for r in server.received] == ["2"] * 5


async def test_concurrent_requests_open_connections_and_keep_them(upstream: UpstreamClient) -> None:
    async def slow(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        return await ok(request, writer)

    async with ScriptedServer(slow) as server:
        for _ in range(2):
            await asyncio.gather(*(fetch(upstream, server.url(), data=b"c") for _ in range(8)))
    assert (len(server.received), server.connections) == (16, 8)


async def test_a_connection_the_server_let_go_is_replaced_and_the_request_sent_once(upstream: UpstreamClient) -> None:
    async def then_hang_up(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"ok"))  # keep-alive by HTTP/1.1's default, then closed anyway: an idle timeout
        return False

    async with ScriptedServer(then_hang_up) as server:
        first = await fetch(upstream, server.url(), data=b"1")
        await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        second = await fetch(upstream, server.url(), data=b"2")
    assert (first, second) == ((200, b"ok"), (200, b"ok"))
    assert [(r.body, r.connection) for r in server.received] == [(b"1", 0), (b"2", 1)]


async def test_connection_close_is_honoured(upstream: UpstreamClient) -> None:
    async def closing(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"bye", "Connection: close"))
        return True  # the server would go on; the client must not

    async with ScriptedServer(closing) as server:
        for _ in range(3):
            assert await fetch(upstream, server.url()) == (200, b"bye")
    assert server.connections == 3


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%b"
        % (len(gzip.compress(b"hello world")), gzip.compress(b"hello world")),
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    ],
    ids=["chunked", "gzip", "interim-answer-first"],
)
async def test_answer_framings(upstream: UpstreamClient, raw: bytes) -> None:
    async def framed(request: Received, writer: asyncio.StreamWriter) -> bool:
        for start in range(0, len(raw), 7):  # in small pieces, so every parser state is crossed between reads
            writer.write(raw[start : start + 7])
            await writer.drain()
            await asyncio.sleep(0)
        return True

    async with ScriptedServer(framed) as server:
        assert await fetch(upstream, server.url(), method="GET") == (200, b"hello world")
        assert await fetch(upstream, server.url(), method="GET") == (200, b"hello world")
    assert server.connections == 1


async def test_an_answer_ended_by_closing_is_read_to_the_end(upstream: UpstreamClient) -> None:
    async def unframed(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        return False

    async with ScriptedServer(unframed) as server:
        assert await fetch(upstream, server.url(), method="GET") == (200, b"until the end")
        assert await fetch(upstream, server.url(), method="GET") == (200, b"until the end")
    assert server.connections == 2


async def test_streamed_request_bodies(upstream: UpstreamClient) -> None:
    pieces = [b"alpha ", b"", b"beta " * 20_000, b"gamma"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with ScriptedServer(ok) as server:
        await fetch(upstream, server.url(), data=body())
        length = str(sum(map(len, pieces)))
        await fetch(upstream, server.url(), data=body(), headers={"Content-Length": length})
    chunked, sized = server.received
    assert chunked.headers.get("transfer-encoding") == "chunked" and "content-length" not in chunked.headers
    assert sized.headers["content-length"] == length and "transfer-encoding" not in sized.headers
    assert chunked.body == sized.body == b"".join(pieces)


async def test_a_large_answer_read_slowly_arrives_whole(upstream: UpstreamClient) -> None:
    blob = bytes(range(256)) * (32 * 1024)  # 8 MiB: reading pauses and resumes several times

    async def large(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(blob))
        await writer.drain()
        return True

    async with ScriptedServer(large) as server:
        async with upstream.request("GET", server.url(), timeout=5, trusted=True) as response:
            received = bytearray()
            async for chunk in response.iter_chunks(size=100_000):
                assert len(chunk) <= 100_000
                received += chunk
                await asyncio.sleep(0.001)
        assert bytes(received) == blob
        assert await fetch(upstream, server.url(), method="GET") == (200, blob)
    assert server.connections == 1


async def test_an_answer_left_unread_does_not_poison_the_next(upstream: UpstreamClient) -> None:
    async def head_first(request: Received, writer: asyncio.StreamWriter) -> bool:
        whole = answer(b"late body " + request.body)
        writer.write(whole[:-5])
        await asyncio.sleep(0.05 if request.body == b"a" else 0)
        writer.write(whole[-5:])
        return True

    async with ScriptedServer(head_first) as server:
        for unread in (b"a", b"b"):  # "a" is left while its body is still coming, "b" once it has all arrived
            async with upstream.request("POST", server.url(), data=unread, timeout=5, trusted=True) as response:
                assert response.status == 200
                await asyncio.sleep(0 if unread == b"a" else 0.05)
            assert await fetch(upstream, server.url(), data=b"next") == (200, b"late body next")
    # Left mid-body, the connection is closed rather than reused; left complete, its unread rest is dropped.
    assert [r.connection for r in server.received] == [0, 1, 1, 1]


async def test_a_line_break_in_a_header_is_refused_unsent(upstream: UpstreamClient) -> None:
    async with ScriptedServer(ok) as server:
        with pytest.raises(InvalidRequest, match="line break"):
            await fetch(upstream, server.url(), headers={"X-Note": "a\r\nX-Injected: 1"})
    assert server.received == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short", "upstream_unreachable"),
        (b"this is not http\r\n\r\n", "upstream_bad_response"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!", "upstream_bad_response"),
        (b"", "upstream_unreachable"),
    ],
    ids=["cut-off", "not-http", "corrupt-gzip", "closed-without-answer"],
)
async def test_broken_answers(upstream: UpstreamClient, raw: bytes, code: str) -> None:
    async def broken(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        return False

    async with ScriptedServer(broken) as server:
        with pytest.raises(UpstreamUnreachable) as failure:
            await fetch(upstream, server.url(), data=b"x")
    assert (failure.value.code, failure.value.status) == (code, 502)
    assert len(server.received) == 1  # a fresh connection that fails is never re-sent


@pytest.mark.parametrize(
    ("content_type", "text"), [("text/plain; charset=latin-1", "café"), ("text/plain; charset=no-such", "caf\ufffd")]
)
async def test_text_is_decoded_by_the_declared_charset(upstream: UpstreamClient, content_type: str, text: str) -> None:
    async def latin(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"caf\xe9", f"Content-Type: {content_type}"))
        return True

    async with (
        ScriptedServer(latin) as server,
        upstream.request("GET", server.url(), timeout=5, trusted=True) as response,
    ):
        assert await response.text() == text


async def test_waiting_for_a_request_slot_counts_against_the_connect_timeout() -> None:
    """With every slot taken by a slow answer, the next request gives up after its connect timeout rather than
    waiting for a slot without end; once the slot is free again, requests go through. The wait and the connect
    that follows share one budget: a slot freed late leaves less time to resolve and connect."""

    async def slow(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.5)
        keep = request.path != "/x2"  # /x2's connection is not kept: the request after it must connect anew
        writer.write(answer(b"late", *([] if keep else ["Connection: close"])))
        return keep

    resolving = {"delay": 0.0}

    async def loopback(_: Origin) -> list[str]:
        await asyncio.sleep(resolving["delay"])
        return ["127.0.0.1"]

    client = Http1Client(loopback, limit=1)
    loop = asyncio.get_running_loop()
    timeouts = {"read_timeout": 5.0, "total_timeout": 5.0}
    async with ScriptedServer(slow) as server:
        origin = Origin("http", "127.0.0.1", server.port)
        holding = asyncio.create_task(client.request(origin, "GET", "/x", {}, None, connect_timeout=5, **timeouts))
        await asyncio.sleep(0.05)
        started = loop.time()
        # (Without the bound it would wait until the first answer is released, below: the outer 2 s ends that.)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2):
                await client.request(origin, "GET", "/y", {}, None, connect_timeout=0.1, **timeouts)
        assert loop.time() - started < 0.4, "gave up before the slot came free"
        first = await holding
        assert await first.read() == b"late"
        first.release()
        second = await client.request(origin, "GET", "/z", {}, None, connect_timeout=0.1, **timeouts)
        assert await second.read() == b"late"
        second.release()

        # The slot comes free after ~0.45 s of a 0.7 s budget; resolving then takes 0.4 s more: over budget.
        client.close()  # no idle connection to reuse (nor will /x2 leave one): the next one resolves and connects
        holding = asyncio.create_task(client.request(origin, "GET", "/x2", {}, None, connect_timeout=5, **timeouts))
        await asyncio.sleep(0.05)
        resolving["delay"] = 0.4
        releasing = asyncio.create_task(_read_and_release(holding))
        with pytest.raises(TimeoutError):
            await client.request(origin, "GET", "/w", {}, None, connect_timeout=0.7, **timeouts)
        await releasing
    client.close()
    sent = [r.path for r in server.received]
    assert sent == ["/x", "/z", "/x2"], "the requests that timed out were never sent"


async def _read_and_release(pending: asyncio.Task[Answer]) -> None:
    answer_ = await pending
    await answer_.read()
    answer_.release()
