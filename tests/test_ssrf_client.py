"""The upstream client that enforces the SSRF guard (providers/http.py), end to end against a real aiohttp server on
loopback.

DNS is a fake injected through the `Resolver` seam. Nothing here connects anywhere but 127.0.0.1: the `connects`
fixture refuses any other connection before it leaves the machine.
"""

from __future__ import annotations

import asyncio
import socket
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from portico.errors import InvalidRequest
from providers.http import UpstreamClient, UpstreamUnreachable
from providers.http1_connect import interleaved
from providers.ssrf import Allowlist, UnsafeUpstream, vet_url
from tests.support.ssrf import (
    PUBLIC_V4,
    ZONE,
    FakeDns,
    connects_fixture,  # noqa: F401 - the fixture
)

# End to end: UpstreamClient against a real aiohttp server on 127.0.0.1.


@dataclass
class LoopbackServer:
    port: int
    seen: list[str]  # path and query of every request that reached the server
    headers: list[dict[str, str]]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


SSE_PIECES = [b'data: {"n": 1}\r\n\r\n', b'data: {"n"', b": 2}\n", b"\n", b"data: [DONE]"]


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece in SSE_PIECES:  # split mid-line, so lines must be reassembled across chunks
        await response.write(piece)
        await asyncio.sleep(0.01)
    return response


async def _ok(request: web.Request) -> web.Response:
    response = web.Response(text="ok")
    response.set_cookie("session", "tenant-a")
    return response


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"method": request.method, "body": await request.json()})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    seen: list[str] = []
    headers: list[dict[str, str]] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.append(request.path_qs)
        headers.append(dict(request.headers))
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.add_routes(
        [
            web.get("/ok", _ok),
            web.get("/redirect", _redirect),
            web.get("/stream", _stream),
            web.post("/echo", _echo),
            web.get("/slow", _slow),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield LoopbackServer(sock.getsockname()[1], seen, headers)
    finally:
        await runner.cleanup()


def client(entries: list[str] | None = None, dns: FakeDns | None = None) -> UpstreamClient:
    return UpstreamClient(Allowlist.from_entries(entries or []), resolve=dns or FakeDns(ZONE))


async def test_allowlisted_loopback_is_reached(server: LoopbackServer) -> None:
    async with client(["127.0.0.1"]) as upstream, upstream.request("GET", server.url("/ok"), timeout=5) as response:
        assert (response.status, await response.text()) == (200, "ok")
    assert server.seen == ["/ok"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost", "mapped.example"]
)
async def test_loopback_is_refused_without_allowlist(server: LoopbackServer, host: str) -> None:
    async with client() as upstream:
        with pytest.raises(UnsafeUpstream):
            async with upstream.request("GET", server.url("/ok", host), timeout=5):
                pass
    assert server.seen == []


async def test_name_resolving_to_loopback_is_refused_by_the_connector(server: LoopbackServer) -> None:
    dns = FakeDns({"inward.example": [["127.0.0.1"]]})
    async with client(dns=dns) as upstream:
        with pytest.raises(UnsafeUpstream, match=r"resolves to 127\.0\.0\.1"):
            async with upstream.request("GET", server.url("/ok", "inward.example"), timeout=5):
                pass
    assert (server.seen, dns.lookups) == ([], ["inward.example"])


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/iam/security-credentials/", "{server}/ok?followed=1"]
)
async def test_redirects_are_returned_not_followed(server: LoopbackServer, target: str, connects: list[str]) -> None:
    location = target.format(server=server.url("").rstrip("/"))
    async with (
        client(["127.0.0.1"]) as upstream,
        upstream.request("GET", server.url("/redirect?" + urlencode({"to": location})), timeout=5) as response,
    ):
        assert (response.status, response.headers["Location"]) == (302, location)
    # Even a reachable, allowed target is not fetched: one connection, one request, the redirect itself.
    assert [path.split("?")[0] for path in server.seen] == ["/redirect"]
    assert connects == ["127.0.0.1"]


async def test_dns_rebinding_after_vetting_is_refused(server: LoopbackServer, connects: list[str]) -> None:
    # The URL is vetted while the name points outward (say when a config is saved), then the name is rebound to
    # loopback: the connection re-judges the address it is about to use, and refuses it.
    dns = FakeDns({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    url = server.url("/ok", "rebind.example")
    vetted = await vet_url(url, Allowlist(), resolve=dns)
    assert [str(ip) for ip in vetted.ips] == [PUBLIC_V4]
    async with client(dns=dns) as upstream:
        with pytest.raises(UnsafeUpstream, match=r"resolves to 127\.0\.0\.1"):
            async with upstream.request("GET", url, timeout=5):
                pass
    assert (server.seen, dns.lookups) == ([], ["rebind.example", "rebind.example"])
    assert connects == []


async def test_connection_goes_to_the_vetted_address(server: LoopbackServer) -> None:
    # The OS cannot resolve `pinned.example`: the request reaches the server only through the vetted answer, and a
    # second request reuses that answer rather than asking again.
    dns = FakeDns({"pinned.example": [["127.0.0.1"]]})
    async with client(["127.0.0.1/32"], dns) as upstream:
        for _ in range(2):
            async with upstream.request("GET", server.url("/ok", "pinned.example"), timeout=5) as response:
                assert response.status == 200
    assert (server.seen, dns.lookups) == (["/ok", "/ok"], ["pinned.example"])
    assert server.headers[0]["Host"] == f"pinned.example:{server.port}"


async def test_one_refused_record_refuses_the_connection(server: LoopbackServer) -> None:
    dns = FakeDns({"split.example": [["127.0.0.1", "10.0.0.5"]]})
    async with client(["127.0.0.1/32"], dns) as upstream:
        with pytest.raises(UnsafeUpstream, match=r"resolves to 10\.0\.0\.5"):
            async with upstream.request("GET", server.url("/ok", "split.example"), timeout=5):
                pass
    assert server.seen == []


async def test_trusted_requests_skip_the_guard_but_not_the_scheme_check(server: LoopbackServer) -> None:
    async with client() as upstream:
        async with upstream.request("GET", server.url("/ok"), timeout=5, trusted=True) as response:
            assert response.status == 200
        with pytest.raises(UnsafeUpstream, match="scheme"):
            async with upstream.request("GET", "file:///etc/passwd", timeout=5, trusted=True):
                pass
    assert server.seen == ["/ok"]


async def test_json_body_and_answer(server: LoopbackServer) -> None:
    async with (
        client(["127.0.0.1"]) as upstream,
        upstream.request("POST", server.url("/echo"), json={"model": "m"}, timeout=5) as response,
    ):
        assert await response.json() == {"method": "POST", "body": {"model": "m"}}


async def test_stream_lines_are_reassembled_across_chunks(server: LoopbackServer) -> None:
    async with (
        client(["127.0.0.1"]) as upstream,
        upstream.request("GET", server.url("/stream"), timeout=5) as response,
    ):
        lines = [line async for line in response.iter_lines()]
    assert lines == [b'data: {"n": 1}', b"", b'data: {"n": 2}', b"", b"data: [DONE]"]


async def test_an_overlong_line_ends_the_stream(server: LoopbackServer) -> None:
    async with (
        client(["127.0.0.1"]) as upstream,
        upstream.request("GET", server.url("/stream"), timeout=5) as response,
    ):
        lines: list[bytes] = []
        with pytest.raises(UpstreamUnreachable) as failure:
            async for line in response.iter_lines(max_line_bytes=8):
                lines.append(line)
    assert (lines, failure.value.code) == ([b'data: {"n": 1}', b""], "upstream_bad_response")


async def test_cookies_are_never_kept(server: LoopbackServer) -> None:
    # A host name, not 127.0.0.1: cookie jars (aiohttp's default among them) ignore IP hosts, which would hide one.
    dns = FakeDns({"tenant-a.example": [["127.0.0.1"]]})
    async with client(["127.0.0.1"], dns) as upstream:
        for _ in range(2):
            async with upstream.request("GET", server.url("/ok", "tenant-a.example"), timeout=5) as response:
                assert "session=tenant-a" in response.headers["Set-Cookie"]
    assert "Cookie" not in server.headers[1]


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request
    async with client(["127.0.0.1"]) as upstream:
        with pytest.raises(UpstreamUnreachable) as failure:
            async with upstream.request("GET", f"http://127.0.0.1:{port}/", timeout=5):
                pass
    assert (failure.value.status, failure.value.code) == (502, "upstream_unreachable")


async def test_silent_upstream_times_out(server: LoopbackServer) -> None:
    async with client(["127.0.0.1"]) as upstream:
        with pytest.raises(UpstreamUnreachable) as failure:
            async with upstream.request("GET", server.url("/slow"), timeout=0.2) as response:
                await response.read()
    assert failure.value.code == "upstream_timeout"


async def test_unresolvable_name_through_the_client(server: LoopbackServer) -> None:
    async with client() as upstream:
        with pytest.raises(InvalidRequest) as failure:
            async with upstream.request("GET", server.url("/ok", "no-such-host.example"), timeout=5):
                pass
    assert failure.value.code == "upstream_unresolvable"


async def test_an_address_that_never_answers_does_not_hold_up_the_next(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.0.0.2 stands for an address whose packets are dropped: its connect never completes. The next record
    # starts 250 ms later and wins (happy eyeballs); connecting them one after the other would spend the whole
    # 2 s connect timeout on the first.
    guarded = BaseSelectorEventLoop.sock_connect  # the `connects` fixture's loopback-only door

    async def dropped(loop: BaseSelectorEventLoop, sock: socket.socket, address: Any) -> None:
        if address[0] == "127.0.0.2":
            await asyncio.sleep(3600)
        await guarded(loop, sock, address)

    monkeypatch.setattr(BaseSelectorEventLoop, "sock_connect", dropped)
    dns = FakeDns({"dual.example": [["127.0.0.2", "127.0.0.1"]]})
    async with (
        client(["127.0.0.0/8"], dns) as upstream,
        upstream.request("GET", server.url("/ok", "dual.example"), timeout=2) as response,
    ):
        assert response.status == 200
    assert server.seen == ["/ok"]


def test_address_families_alternate_in_connection_order() -> None:
    six, four = ["2001:db8::1", "2001:db8::2", "2001:db8::3"], ["192.0.2.1", "192.0.2.2"]
    assert interleaved([*six, *four]) == ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"]
    assert interleaved([*four, *six]) == ["192.0.2.1", "2001:db8::1", "192.0.2.2", "2001:db8::2", "2001:db8::3"]
