"""The SSRF guard (providers/ssrf.py) and the upstream client that enforces it (providers/http.py).

DNS is a fake injected through the `Resolver` seam, so names can resolve anywhere without a network. Nothing here
connects anywhere but 127.0.0.1: refused addresses are only ever judged, the end-to-end tests run a real aiohttp
server on loopback, and the `connects` fixture refuses any other connection before it leaves the machine, so even a
regression in the guard cannot send traffic elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from portico.errors import InvalidRequest
from portico.settings import Settings
from providers.http import UpstreamClient, UpstreamUnreachable
from providers.ssrf import Allowlist, UnsafeUpstream, refused_reason, vet_url

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


@dataclass
class FakeDns:
    """name -> successive answers (the last one repeats); an unknown name fails as NXDOMAIN. Records lookups."""

    answers: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        series = self.answers.get(host)
        if not series:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return series[min(self.lookups.count(host), len(series)) - 1]


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The address of every outbound connection attempted during the test; all but 127.0.0.1 are refused unsent.

    aiohttp connects through aiohappyeyeballs, which calls the event loop's `sock_connect`: that is the one door.
    """
    attempted: list[str] = []
    original = BaseSelectorEventLoop.sock_connect

    async def loopback_only(loop: BaseSelectorEventLoop, sock: socket.socket, address: Any) -> None:
        attempted.append(address[0])
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"this test may only connect to 127.0.0.1, not {address[0]}")
        await original(loop, sock, address)

    monkeypatch.setattr(BaseSelectorEventLoop, "sock_connect", loopback_only)
    return attempted


ZONE = {
    "evil.example": [["10.0.0.5"]],
    "mixed.example": [[PUBLIC_V4, "10.0.0.5"]],
    "inward6.example": [[PUBLIC_V6, "::1"]],
    "metadata-alias.example": [["169.254.169.254"]],
    "mapped.example": [["::ffff:127.0.0.1"]],
    "cgnat.example": [["100.64.1.2"]],
    "public.example": [[PUBLIC_V4, PUBLIC_V6]],
    "ollama.default.svc.cluster.local": [["10.0.0.5"]],
    "ollama": [["172.18.0.4"]],
    "localhost": [["127.0.0.1", "::1"]],
}

LOOPBACK = "loopback"
PRIVATE = "private address (RFC 1918)"
METADATA = "cloud metadata endpoint"
SCHEME = "scheme must be http or https"
USERINFO = "user name or password"

# (url, a fragment the refusal must name). Every one is refused by vet_url, the DNS answers coming from ZONE.
REFUSED = [
    # Loopback, in every encoding the OS resolver accepts.
    pytest.param("http://127.0.0.1/", LOOPBACK, id="loopback-dotted"),
    pytest.param("http://127.1/", LOOPBACK, id="loopback-short"),
    pytest.param("http://2130706433/", LOOPBACK, id="loopback-decimal"),
    pytest.param("http://0x7f000001/", LOOPBACK, id="loopback-hex"),
    pytest.param("http://0177.0.0.1/", LOOPBACK, id="loopback-octal-octet"),
    pytest.param("http://017700000001/", LOOPBACK, id="loopback-octal-whole"),
    pytest.param("http://0x7f.1/", LOOPBACK, id="loopback-hex-short"),
    pytest.param("http://127.0.0.1.:8080/", LOOPBACK, id="loopback-trailing-dot"),
    pytest.param("http://127.255.255.254/", LOOPBACK, id="loopback-top-of-range"),
    pytest.param("http://[::1]/", LOOPBACK, id="loopback-v6"),
    pytest.param("http://[::ffff:127.0.0.1]/", LOOPBACK, id="loopback-v4-mapped"),
    pytest.param("http://[::ffff:7f00:1]/", LOOPBACK, id="loopback-v4-mapped-hex"),
    pytest.param("http://[0:0:0:0:0:ffff:127.0.0.1]/", LOOPBACK, id="loopback-v4-mapped-long"),
    pytest.param("http://[::127.0.0.1]/", LOOPBACK, id="loopback-v4-compatible"),
    pytest.param("http://[::ffff:0:7f00:1]/", LOOPBACK, id="loopback-v4-translated"),
    # Names that mean this host or its network, refused before any lookup.
    pytest.param("http://localhost/", "loopback name", id="localhost"),
    pytest.param("http://localhost./", "loopback name", id="localhost-trailing-dot"),
    pytest.param("http://LOCALHOST:8000/", "loopback name", id="localhost-upper"),
    pytest.param("http://api.localhost/", "loopback name", id="localhost-subdomain"),
    pytest.param("http://metadata.google.internal/computeMetadata/v1/", ".internal", id="gcp-metadata-name"),
    pytest.param("http://instance-data.ec2.internal/", ".internal", id="aws-internal-name"),
    pytest.param("http://metadata/", "single-label", id="single-label-metadata"),
    pytest.param("http://redis:6379/", "single-label", id="single-label-service"),
    pytest.param("http://printer.local/", "multicast DNS", id="mdns-name"),
    pytest.param("http://router.home.arpa/", "home-network", id="home-arpa"),
    # Private ranges.
    pytest.param("http://10.0.0.1/", PRIVATE, id="private-10"),
    pytest.param("http://172.16.0.1/", PRIVATE, id="private-172.16"),
    pytest.param("http://172.31.255.255/", PRIVATE, id="private-172.31"),
    pytest.param("http://192.168.1.1/", PRIVATE, id="private-192.168"),
    pytest.param("http://[fc00::1]/", "unique local", id="private-fc00"),
    pytest.param("http://[fd12:3456::1]/", "unique local", id="private-fd"),
    # Link-local and cloud metadata.
    pytest.param("http://169.254.169.254/latest/meta-data/", METADATA, id="metadata-aws"),
    pytest.param("http://0xa9fea9fe/", METADATA, id="metadata-hex"),
    pytest.param("http://[fd00:ec2::254]/", METADATA, id="metadata-aws-v6"),
    pytest.param("http://100.100.100.200/", METADATA, id="metadata-alibaba"),
    pytest.param("http://192.0.0.192/", METADATA, id="metadata-oracle"),
    pytest.param("http://168.63.129.16/", METADATA, id="metadata-azure-wireserver"),
    pytest.param("http://169.254.170.2/v2/credentials", METADATA, id="metadata-ecs"),
    pytest.param("http://169.254.1.1/", "link-local", id="link-local-v4"),
    pytest.param("http://[fe80::1]/", "link-local", id="link-local-v6"),
    pytest.param("http://[fe80::1%25eth0]/", "link-local", id="link-local-v6-zone"),
    # Unspecified, CGNAT and the other special ranges.
    pytest.param("http://0.0.0.0:8000/", "unspecified", id="unspecified-v4"),
    pytest.param("http://0/", "unspecified", id="unspecified-zero"),
    pytest.param("http://[::]/", "unspecified", id="unspecified-v6"),
    pytest.param("http://100.64.0.1/", "carrier-grade NAT", id="cgnat"),
    pytest.param("http://224.0.0.1/", "multicast", id="multicast-v4"),
    pytest.param("http://[ff02::1]/", "multicast", id="multicast-v6"),
    pytest.param("http://255.255.255.255/", "broadcast", id="broadcast"),
    pytest.param("http://240.0.0.1/", "reserved", id="reserved"),
    pytest.param("http://198.18.0.1/", "benchmarking", id="benchmarking"),
    pytest.param("http://192.0.2.1/", "documentation", id="documentation-v4"),
    pytest.param("http://[2001:db8::1]/", "documentation", id="documentation-v6"),
    # IPv6 forms that carry a private IPv4 address.
    pytest.param("http://[64:ff9b::a00:5]/", "NAT64 form of 10.0.0.5", id="nat64-private"),
    pytest.param("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1", id="nat64-loopback"),
    pytest.param("http://[64:ff9b:1::a00:5]/", "local-use NAT64", id="nat64-local-use"),
    pytest.param("http://[2002:a9fe:a9fe::]/", "6to4 form of 169.254.169.254", id="6to4-metadata"),
    pytest.param("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1", id="6to4-loopback"),
    pytest.param("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo form of 10.0.0.1", id="teredo-private"),
    # Names whose records point inward: one inward record is enough.
    pytest.param("http://evil.example/", "resolves to 10.0.0.5", id="dns-private"),
    pytest.param("http://mixed.example/", "resolves to 10.0.0.5", id="dns-public-and-private"),
    pytest.param("https://inward6.example/", "resolves to ::1", id="dns-aaaa-loopback"),
    pytest.param("http://metadata-alias.example/", METADATA, id="dns-metadata"),
    pytest.param("http://mapped.example/", "IPv4-mapped form of 127.0.0.1", id="dns-v4-mapped"),
    pytest.param("http://cgnat.example/", "carrier-grade NAT", id="dns-cgnat"),
    # URL tricks.
    pytest.param("http://api.openai.com@127.0.0.1/", USERINFO, id="userinfo-host-confusion"),
    pytest.param("http://user:secret@public.example/", USERINFO, id="userinfo-credentials"),
    pytest.param("http://api.openai.com:443@169.254.169.254/", USERINFO, id="userinfo-port-confusion"),
    pytest.param("file:///etc/passwd", SCHEME, id="scheme-file"),
    pytest.param("gopher://127.0.0.1:6379/_INFO", SCHEME, id="scheme-gopher"),
    pytest.param("ftp://public.example/", SCHEME, id="scheme-ftp"),
    pytest.param("dict://127.0.0.1:11211/stat", SCHEME, id="scheme-dict"),
    pytest.param("//127.0.0.1/", SCHEME, id="scheme-relative"),
    pytest.param("http:///latest/meta-data", "no host", id="no-host"),
    pytest.param("http:/169.254.169.254/", "no host", id="no-authority"),
    pytest.param("http://999.1/", "ends in a number", id="numeric-out-of-range"),
    pytest.param("http://1.2.3.4.5/", "ends in a number", id="numeric-five-parts"),
    pytest.param("http://%31%32%37.0.0.1/", "ends in a number", id="percent-encoded-host"),
    pytest.param("http://127.0.0.1\\@public.example/", "not a valid URL", id="backslash-authority"),
]


@pytest.mark.parametrize(("url", "fragment"), REFUSED)
async def test_refused(url: str, fragment: str) -> None:
    dns = FakeDns(ZONE)
    with pytest.raises(UnsafeUpstream) as refusal:
        await vet_url(url, Allowlist(), resolve=dns)
    assert (refusal.value.http_status, refusal.value.code) == (400, "unsafe_upstream")
    assert fragment in refusal.value.message
    # Only the names in the zone were ever looked up: literals and internal names are judged without DNS (an
    # unknown name would have failed as unresolvable, not as unsafe).
    assert set(dns.lookups) <= ZONE.keys()


@pytest.mark.parametrize(("url", "fragment"), REFUSED)
async def test_client_refuses_before_connecting(url: str, fragment: str, connects: list[str]) -> None:
    async with UpstreamClient(Allowlist(), resolve=FakeDns(ZONE)) as upstream:
        with pytest.raises(UnsafeUpstream) as refusal:
            async with upstream.request("GET", url, timeout=5):
                pass
    assert fragment in refusal.value.message
    assert connects == []


def test_the_corpus_is_large() -> None:
    assert len(REFUSED) >= 40


async def test_a_refusal_says_how_to_allow_the_host() -> None:
    with pytest.raises(UnsafeUpstream) as refusal:
        await vet_url("http://evil.example/v1", Allowlist(), resolve=FakeDns(ZONE))
    assert refusal.value.message.startswith("Portico will not connect to 'evil.example': it resolves to 10.0.0.5")
    assert "PORTICO_CUSTOM_HOST_ALLOWLIST" in refusal.value.message


@pytest.mark.parametrize(
    ("url", "ips"),
    [
        pytest.param(f"http://{PUBLIC_V4}/v1", [PUBLIC_V4], id="public-v4-literal"),
        pytest.param(f"http://[{PUBLIC_V6}]:8000/", [PUBLIC_V6], id="public-v6-literal"),
        pytest.param("http://[64:ff9b::5db8:d822]/", ["64:ff9b::5db8:d822"], id="nat64-public"),
        pytest.param("http://[2002:5db8:d822::]/", ["2002:5db8:d822::"], id="6to4-public"),
        pytest.param("https://public.example/v1/chat", [PUBLIC_V4, PUBLIC_V6], id="public-name"),
        pytest.param("https://PUBLIC.example./v1", [PUBLIC_V4, PUBLIC_V6], id="public-name-upper-trailing-dot"),
    ],
)
async def test_public_destinations_pass(url: str, ips: list[str]) -> None:
    vetted = await vet_url(url, Allowlist(), resolve=FakeDns(ZONE))
    assert [str(ip) for ip in vetted.ips] == ips


async def test_vetted_url_carries_host_port_and_url() -> None:
    vetted = await vet_url("https://public.example/v1/chat?x=1", Allowlist(), resolve=FakeDns(ZONE))
    assert (vetted.host, vetted.port, str(vetted.url)) == ("public.example", 443, "https://public.example/v1/chat?x=1")


@pytest.mark.parametrize(
    ("entries", "url", "ips"),
    [
        pytest.param(["localhost"], "http://localhost:11434/", ["127.0.0.1", "::1"], id="host"),
        pytest.param(["Ollama"], "http://OLLAMA:11434/api", ["172.18.0.4"], id="host-case-insensitive"),
        pytest.param(["127.0.0.1"], "http://127.0.0.1:8000/", ["127.0.0.1"], id="address"),
        pytest.param(["127.0.0.1"], "http://[::ffff:127.0.0.1]:8000/", ["::ffff:7f00:1"], id="address-v4-mapped"),
        pytest.param(["10.0.0.0/8"], "http://evil.example/", ["10.0.0.5"], id="cidr-v4"),
        pytest.param(["fd00::/8"], "http://[fd12:3456::1]/", ["fd12:3456::1"], id="cidr-v6"),
        pytest.param(["*.svc.cluster.local"], "http://ollama.default.svc.cluster.local/", ["10.0.0.5"], id="suffix"),
    ],
)
async def test_allowlisted_destinations_pass(entries: list[str], url: str, ips: list[str]) -> None:
    vetted = await vet_url(url, Allowlist.from_entries(entries), resolve=FakeDns(ZONE))
    assert [str(ip) for ip in vetted.ips] == ips


@pytest.mark.parametrize(
    ("entries", "url", "fragment"),
    [
        pytest.param(["10.0.0.0/8"], "http://192.168.1.1/", PRIVATE, id="cidr-does-not-cover"),
        pytest.param(["192.168.0.0/16"], "http://mixed.example/", "10.0.0.5", id="cidr-covers-one-record-of-two"),
        pytest.param(["*.svc.cluster.local"], "http://svc.cluster.local/", "multicast DNS", id="suffix-not-apex"),
        pytest.param(["*.example.com"], "http://example.com.evil.example/", "10.0.0.5", id="suffix-not-infix"),
        pytest.param(["172.16.0.0/12"], "http://ollama:11434/", "single-label", id="cidr-does-not-allow-names"),
        pytest.param(["127.0.0.0/8"], "http://0x7f000001/", "dotted-decimal", id="legacy-form-of-allowed-address"),
    ],
)
async def test_allowlist_is_no_wider_than_written(entries: list[str], url: str, fragment: str) -> None:
    zone = {**ZONE, "example.com.evil.example": [["10.0.0.5"]]}
    with pytest.raises(UnsafeUpstream) as refusal:
        await vet_url(url, Allowlist.from_entries(entries), resolve=FakeDns(zone))
    assert fragment in refusal.value.message


@pytest.mark.parametrize("entry", ["", "*", "*.", "http://ollama", "999.1", "10.0.0.0/33", "bad host"])
def test_allowlist_rejects_malformed_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="PORTICO_CUSTOM_HOST_ALLOWLIST"):
        Allowlist.from_entries([entry])


def test_allowlist_reads_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_CUSTOM_HOST_ALLOWLIST", '["ollama", "*.svc.cluster.local", "10.20.0.0/16"]')
    allowlist = Allowlist.from_entries(Settings(_env_file=None).custom_host_allowlist)
    assert allowlist.allows_host("ollama")
    assert allowlist.allows_host("vllm.ml.svc.cluster.local")
    assert not allowlist.allows_host("evil.example")
    assert allowlist.allows_ip(ipaddress.ip_address("10.20.3.4"))
    assert not allowlist.allows_ip(ipaddress.ip_address("10.21.0.1"))


async def test_unresolvable_name_is_a_clear_bad_request() -> None:
    with pytest.raises(InvalidRequest) as failure:
        await vet_url("https://no-such-host.example/", Allowlist(), resolve=FakeDns(ZONE))
    assert not isinstance(failure.value, UnsafeUpstream)
    assert failure.value.code == "upstream_unresolvable"
    assert "no-such-host.example" in failure.value.message


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::808:808", None),
        ("2001:0:4136:e378:8000:63bf:a2f2:ecf2", None),  # Teredo: server and client (93.13.19.13) both public
        ("::ffff:8.8.8.8", None),
        ("192.88.99.1", "6to4 relay"),
        ("100::1", "discard-only"),
        ("2001:2::1", "benchmarking"),
        ("3fff::1", "documentation"),
        ("fec0::1", "site-local"),
    ],
)
def test_refused_reason(address: str, fragment: str | None) -> None:
    reason = refused_reason(ipaddress.ip_address(address))
    assert reason == fragment if fragment is None else fragment in (reason or "")


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
    # A host name, not 127.0.0.1: aiohttp's default cookie jar ignores IP hosts, which would hide a kept cookie.
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
