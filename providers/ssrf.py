"""The SSRF guard: may Portico contact this URL on a caller's behalf?

A caller who controls a URL Portico fetches (`custom_host` for vLLM/Ollama upstreams, any URL in a request) could
point it inside Portico's own network — a loopback admin port, the cloud metadata service, a database — and read
the answer back through the gateway. DESIGN.md §7: resolve, refuse private/link-local/metadata addresses, connect
to the vetted IP. The rules, in order:

1. The URL is parsed by yarl, which the upstream client connects with too, so the guard and the client never
   disagree about which host a URL names. Scheme http or https; no userinfo (`http://api.openai.com@127.0.0.1/`
   names 127.0.0.1); a well-formed host.
2. An IP-literal host is judged as is, including the legacy numeric forms the OS resolver still accepts (`127.1`,
   `2130706433`, `0x7f000001`, `0177.0.0.1`), read with inet_aton semantics. A host whose last label is a number
   must be such an address (the WHATWG URL rule), so `999.1` is refused rather than sent to DNS.
3. Internal names are refused before any lookup: single-label names (the resolver's search domains complete them
   into hosts on our own network: `redis`, `metadata`, `instance-data`), `localhost` and `*.localhost`,
   `*.internal` (`metadata.google.internal`, AWS `*.ec2.internal`), `*.local`, `*.localdomain`, `*.home.arpa`.
4. A name is resolved (every A and AAAA record) and refused if any record is refused: the attacker who controls
   the zone also controls which record a client happens to pick.

`PORTICO_CUSTOM_HOST_ALLOWLIST` overrides rules 2-4: an allowlisted name is trusted whatever it resolves to; an
allowlisted address (CIDR) is trusted whichever name led to it. A CIDR entry does not lift rule 3: to reach the
compose service `ollama`, list `ollama` itself.

Judging is half the job: the connection must go to the addresses judged, or a DNS answer that changes between the
check and the connect (rebinding) walks past the guard. `providers/http.py` does that by vetting inside its
connector's resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from yarl import URL

from portico.errors import InvalidRequest

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# (host, port) -> every address the name resolves to, as strings. Injected so tests run a fake DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWLIST_SETTING = "PORTICO_CUSTOM_HOST_ALLOWLIST"
_SCHEMES = {"http": 80, "https": 443}


class UnsafeUpstream(InvalidRequest):
    """A URL Portico will not contact on a caller's behalf: 400, code `unsafe_upstream`."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code="unsafe_upstream")

    @classmethod
    def destination(cls, host: str, detail: str) -> UnsafeUpstream:
        """A well-formed URL whose destination is inside the network: say why, and how an operator allows it."""
        return cls(
            f"Portico will not connect to '{host}': {detail}. If this upstream is meant to be reachable, an operator "
            f"can add it to {ALLOWLIST_SETTING} (a host name, a *.suffix wildcard or a CIDR)."
        )

    @classmethod
    def malformed(cls, url: str, detail: str) -> UnsafeUpstream:
        return cls(f"Portico will not fetch '{url}': {detail}.")


# First match wins, so the specific entries (metadata endpoints) come before the ranges that contain them.
def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in rows)


_METADATA = "a cloud metadata endpoint"
_REFUSED_V4 = _table(
    ("169.254.169.254/32", f"{_METADATA} (AWS, GCP, Azure, OCI, DigitalOcean, OpenStack)"),
    ("169.254.170.2/32", f"{_METADATA} (AWS ECS task credentials)"),
    ("100.100.100.200/32", f"{_METADATA} (Alibaba Cloud)"),
    ("192.0.0.192/32", f"{_METADATA} (Oracle Cloud)"),
    # Azure's WireServer: a public address that only answers VMs, and hands out their platform configuration.
    ("168.63.129.16/32", f"{_METADATA} (Azure WireServer)"),
    ("0.0.0.0/8", "an unspecified address (0.0.0.0/8, which the OS treats as this host)"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address (127.0.0.0/8)"),
    ("169.254.0.0/16", "a link-local address (169.254.0.0/16)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address (RFC 5737)"),
    ("192.88.99.0/24", "a 6to4 relay anycast address (RFC 7526)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
    ("198.51.100.0/24", "a documentation address (RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (RFC 5737)"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
)
_REFUSED_V6 = _table(
    ("::/128", "the unspecified address (::)"),
    ("::1/128", "the loopback address (::1)"),
    ("fd00:ec2::254/128", f"{_METADATA} (AWS, IPv6)"),
    ("fc00::/7", "a unique local (private) address (fc00::/7)"),
    ("fe80::/10", "a link-local address (fe80::/10)"),
    ("fec0::/10", "a site-local address (fec0::/10)"),
    ("ff00::/8", "a multicast address"),
    ("100::/64", "a discard-only address (RFC 6666)"),
    # RFC 8215's local-use NAT64 prefix may place the IPv4 address at any RFC 6052 offset: refuse it whole.
    ("64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)"),
    ("2001:2::/48", "a benchmarking address (RFC 5180)"),
    ("2001:db8::/32", "a documentation address (RFC 3849)"),
    ("3fff::/20", "a documentation address (RFC 9637)"),
)


def _low32(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    return (IPv4Address(int(ip) & 0xFFFFFFFF),)


def _sixtofour(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    return (ip.sixtofour,) if ip.sixtofour else ()


def _teredo(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    return ip.teredo or ()


# IPv6 forms that carry an IPv4 address, which is where the packets end up; Python's `is_private` and `is_global`
# do not look inside them (3.11 calls ::127.0.0.1 global). `::` and `::1` are judged before this table.
_EMBEDDINGS: tuple[tuple[IPv6Network, str, Callable[[IPv6Address], tuple[IPv4Address, ...]]], ...] = (
    (IPv6Network("::ffff:0:0/96"), "IPv4-mapped", _low32),
    (IPv6Network("::ffff:0:0:0/96"), "IPv4-translated (SIIT)", _low32),
    (IPv6Network("64:ff9b::/96"), "NAT64", _low32),
    (IPv6Network("2002::/16"), "6to4", _sixtofour),
    (IPv6Network("2001::/32"), "Teredo", _teredo),
    (IPv6Network("::/96"), "IPv4-compatible", _low32),
)


def refused_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be contacted on a caller's behalf, as a noun phrase; None when it is a public address."""
    if isinstance(ip, IPv6Address) and int(ip) > 1:
        for prefix, form, extract in _EMBEDDINGS:
            if ip in prefix:
                return _embedded_reason(form, extract(ip))
    for network, reason in _REFUSED_V4 if ip.version == 4 else _REFUSED_V6:
        if ip in network:
            return reason
    if not ip.is_global:
        return "not a globally routable address"
    return None


def _embedded_reason(form: str, embedded: tuple[IPv4Address, ...]) -> str | None:
    # Judged by the IPv4 addresses inside, whatever Python thinks of the IPv6 range itself (Teredo is "private").
    for inner in embedded:
        reason = refused_reason(inner)
        if reason:
            return f"the {form} form of {inner}, {reason}"
    return None


_INTERNAL_SUFFIXES = (
    ("localhost", "a loopback name (RFC 6761)"),
    ("internal", "a private-network name (.internal; cloud metadata answers at metadata.google.internal)"),
    ("local", "a multicast DNS name (RFC 6762)"),
    ("localdomain", "a local name (.localdomain)"),
    ("home.arpa", "a home-network name (RFC 8375)"),
)


def internal_name_reason(name: str) -> str | None:
    """Why a host name points inside Portico's network whatever DNS says, or None. `name` is normalised."""
    for suffix, reason in _INTERNAL_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            return reason
    if "." not in name:
        return "a single-label name, which the resolver's search domains complete into a host on Portico's network"
    return None


@dataclass(frozen=True)
class Allowlist:
    """Upstreams an operator allows despite the guard (`PORTICO_CUSTOM_HOST_ALLOWLIST`).

    Entries: an exact host name (case-insensitive), `*.example.com` (any name under example.com, not example.com
    itself, as in TLS certificates), or an address or CIDR, IPv4 or IPv6.
    """

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> Allowlist:
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for entry in entries:
            value = normalise_host(entry.strip())
            if value.startswith("*.") and _is_hostname(value[2:]):
                suffixes.append(value[1:])
            elif network := _parse_network(value):
                networks.append(network)
            elif _is_hostname(value) and not _ends_in_number(value):
                hosts.add(value)
            else:
                raise ValueError(f"{ALLOWLIST_SETTING} entry {entry!r} is not a host name, a *.suffix or a CIDR")
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def allows_host(self, host: str) -> bool:
        name = normalise_host(host)
        return name in self.hosts or any(name.endswith(suffix) for suffix in self.suffixes)

    def allows_ip(self, ip: IPAddress) -> bool:
        # ::ffff:a.b.c.d reaches a.b.c.d, so an allowed IPv4 address is allowed in its mapped form too.
        candidates = (ip, ip.ipv4_mapped) if isinstance(ip, IPv6Address) and ip.ipv4_mapped else (ip,)
        return any(candidate in network for candidate in candidates for network in self.networks)


def _parse_network(value: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    """Lower case, IPv6 brackets and trailing dots removed: `LOCALHOST.` and `localhost` are one host."""
    return host.lower().removeprefix("[").removesuffix("]").rstrip(".")


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A number as inet_aton reads one: 0x-prefixed hex, 0-prefixed octal, or decimal.
_ATON_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


def _is_hostname(name: str) -> bool:
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def _ends_in_number(host: str) -> bool:
    return _ATON_NUMBER.fullmatch(host.rsplit(".", 1)[-1]) is not None


def _aton_number(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:] or "0", 16)
    return int(text, 8) if len(text) > 1 and text[0] == "0" else int(text)


def inet_aton(host: str) -> IPv4Address | None:
    """`host` read as inet_aton(3) reads it (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`), or None.

    Written out rather than calling socket.inet_aton, which on glibc also accepts trailing text after a space.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_ATON_NUMBER.fullmatch(part) for part in parts):
        return None
    try:
        *head, last = [_aton_number(part) for part in parts]
    except ValueError:  # "08": a leading zero means octal
        return None
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    for index, value in enumerate(head):
        last |= value << (24 - 8 * index)
    return IPv4Address(last)


def literal_address(host: str) -> IPAddress | None:
    """The address an IP-literal host denotes, or None for a name. `host` is normalised."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise UnsafeUpstream.malformed(host, "the host is not a valid IPv6 address")
    if not _ends_in_number(host):
        return None
    address = inet_aton(host)
    if address is None:
        raise UnsafeUpstream.malformed(host, "the host ends in a number but is not an IPv4 address")
    return address


@dataclass(frozen=True)
class UpstreamTarget:
    """A URL that passed every check that needs no DNS. `address` is set when the host is an IP literal."""

    url: URL
    host: str
    port: int
    address: IPAddress | None


@dataclass(frozen=True)
class VettedUrl:
    """A URL that passed the guard, and the addresses it was judged by."""

    url: URL
    host: str
    port: int
    ips: tuple[IPAddress, ...]


def parse_http_url(url: str) -> tuple[URL, str, int]:
    """Parse as the upstream client will: an absolute http(s) URL with a host and no userinfo. Returns (url, host,
    port)."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise UnsafeUpstream.malformed(url, f"it is not a valid URL ({exc})") from exc
    scheme = parsed.scheme.lower()
    if scheme not in _SCHEMES:
        raise UnsafeUpstream.malformed(url, f"the scheme must be http or https, not {scheme or 'missing'!r}")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeUpstream.malformed(url, "a user name or password in the URL is not allowed; send them as headers")
    host = normalise_host(parsed.raw_host or "")
    if not host:
        raise UnsafeUpstream.malformed(url, "the URL has no host")
    return parsed, host, parsed.port or _SCHEMES[scheme]


def parse_upstream_url(url: str, allowlist: Allowlist) -> UpstreamTarget:
    """Every check short of DNS: the URL's form, an IP-literal host's address, internal names."""
    parsed, host, port = parse_http_url(url)
    address = literal_address(host)
    if address is not None:
        _judge_literal(host, address, allowlist)
    else:
        _judge_name(host, allowlist)
    return UpstreamTarget(parsed, host, port, address)


def _judge_literal(host: str, address: IPAddress, allowlist: Allowlist) -> None:
    written_otherwise = host != str(address)
    subject = f"'{host}' means {address}," if written_otherwise else f"{address} is"
    if not allowlist.allows_ip(address) and (reason := refused_reason(address)):
        raise UnsafeUpstream.destination(host, f"{subject} {reason}")
    if written_otherwise and isinstance(address, IPv4Address):
        # A legacy numeric form is ambiguous to readers and to other tools; say what to write instead.
        raise UnsafeUpstream.malformed(host, f"'{host}' means {address}; write the address in dotted-decimal form")


def _judge_name(name: str, allowlist: Allowlist) -> bool:
    """Refuse a malformed or internal name; True when the name itself is allowlisted (its addresses are not judged)."""
    if not _is_hostname(name):
        raise UnsafeUpstream.malformed(name, f"'{name}' is not a valid host name")
    if allowlist.allows_host(name):
        return True
    if reason := internal_name_reason(name):
        raise UnsafeUpstream.destination(name, f"it is {reason}")
    return False


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the OS resolver returns for `host`, A and AAAA alike, in its order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vet_host(
    host: str, port: int, allowlist: Allowlist, *, resolve: Resolver = system_resolve
) -> tuple[IPAddress, ...]:
    """The addresses `host` may be contacted at: all of its records, each judged; refused if any one is refused."""
    name = normalise_host(host)
    address = literal_address(name)
    if address is not None:
        _judge_literal(name, address, allowlist)
        return (address,)
    name_allowed = _judge_name(name, allowlist)
    addresses = await _resolve_all(name, port, resolve)
    for ip in addresses:
        if not name_allowed and not allowlist.allows_ip(ip) and (reason := refused_reason(ip)):
            raise UnsafeUpstream.destination(name, f"it resolves to {ip}, {reason}")
    return addresses


async def _resolve_all(name: str, port: int, resolve: Resolver) -> tuple[IPAddress, ...]:
    try:
        answers = await resolve(name, port)
    except OSError as exc:
        raise InvalidRequest(
            f"The upstream host '{name}' could not be resolved ({exc}).", code="upstream_unresolvable"
        ) from exc
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(answer) for answer in answers))
    if not addresses:
        raise InvalidRequest(f"The upstream host '{name}' has no address.", code="upstream_unresolvable")
    return addresses


async def vet_url(url: str, allowlist: Allowlist, *, resolve: Resolver = system_resolve) -> VettedUrl:
    """Judge a caller-supplied URL completely, DNS included: raises UnsafeUpstream, or says where it may go.

    Use it to refuse a bad URL early (when a config or virtual key carrying `custom_host` is saved). Judging alone
    does not pin the connection: send requests through `providers.http.UpstreamClient`, which judges the addresses
    it actually connects to.
    """
    target = parse_upstream_url(url, allowlist)
    if target.address is not None:
        ips: tuple[IPAddress, ...] = (target.address,)
    else:
        ips = await vet_host(target.host, target.port, allowlist, resolve=resolve)
    return VettedUrl(target.url, target.host, target.port, ips)
