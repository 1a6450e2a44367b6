"""The SSRF guard (providers/ssrf.py): the corpus of refused URLs, public and allowlisted destinations, the allowlist.

DNS is a fake injected through the `Resolver` seam, so names can resolve anywhere without a network; refused
addresses are only ever judged, and the `connects` fixture refuses any connection but 127.0.0.1 before it leaves the
machine, so even a regression in the guard cannot send traffic elsewhere.
"""

from __future__ import annotations

import ipaddress

import pytest

from portico.errors import InvalidRequest
from portico.settings import Settings
from providers.http import UpstreamClient
from providers.ssrf import Allowlist, UnsafeUpstream, refused_reason, vet_url
from tests.support.ssrf import (
    LOOPBACK,
    METADATA,
    PRIVATE,
    PUBLIC_V4,
    PUBLIC_V6,
    SCHEME,
    USERINFO,
    ZONE,
    FakeDns,
    connects_fixture,  # noqa: F401 - the fixture
)

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
