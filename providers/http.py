"""The HTTP client for every call Portico makes upstream: provider APIs and caller-supplied `custom_host`s.

Requests go through Portico's own HTTP/1.1 transport (providers/http1.py), chosen by benchmark as DESIGN.md §5
asks: httpx's pool collapses past ~64 concurrent requests; aiohttp scales but costs ~3x the CPU per request
(bench/upstream_client.py).
WebSockets (the realtime proxy) go through aiohttp.

Two of each, guarded and trusted, which never share a connection pool, a DNS cache or anything else:

- guarded (the default), for URLs a caller supplied (`custom_host`, any URL taken from a request). The URL's form,
  an IP-literal host and internal names are checked before the request (`parse_upstream_url`); a name is resolved
  through `vet_host`, which judges every address, and the transport (or, for a WebSocket, aiohttp's connector
  through `_VettingResolver`) is handed only judged ones. The connection therefore goes to exactly the addresses
  that were checked, with no window for DNS rebinding between check and connect. Answers are cached for
  `dns_cache_seconds` (they are vetted answers), so a name costs one lookup per TTL rather than one per request.
- trusted (`trusted=True`), for base URLs an operator configured (settings, a provider's default endpoint such as
  api.openai.com or a Bedrock regional endpoint, a simulator on 127.0.0.1 in tests, a VPC endpoint). The guard
  would refuse several of those, and the operator chose them. Pass `trusted=True` only for a URL that comes from
  configuration, never for one built from anything in a request.

Every request carries `X-Client-Request-Id` while `CLIENT_REQUEST_ID` is set (OpenAI's documented client request
id header, logged on their side and echoed on errors): a managed batch sets it to `<batch_id>:<custom_id>` for each
line, so the upstream (and the simulators' counters) can tell a re-sent line from a new one.

Both: redirects are never followed (a 3xx reaches the caller as is; following one would hand the
destination to whoever controls the upstream); cookies are never kept (one client serves every workspace, and a
cookie set by one tenant's upstream must not ride on another's request); proxies from the environment are ignored
(the guard judges the address the connection goes to, and a proxy would make that the proxy's).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from portico import json_codec
from portico.errors import InvalidRequest, UpstreamError
from providers.http1 import Answer, Body, Http1Client, MalformedHeader, Origin
from providers.http1_protocol import TransportError
from providers.ssrf import (
    Allowlist,
    IPAddress,
    Resolver,
    literal_address,
    parse_http_url,
    parse_upstream_url,
    system_resolve,
    vet_host,
)

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult  # a TypedDict: built below as a plain dict

CHUNK_BYTES = 64 * 1024
# URLs whose parse (and DNS-free judgement) is remembered; past this many the memory starts afresh.
MAX_PARSED_URLS = 1024
MAX_LINE_BYTES = 1024 * 1024
CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"
# Set by whoever sends on behalf of an identifiable unit of work (a batch line); every upstream request made in that
# context carries it. A ContextVar, because the request is built deep inside adapters that know nothing of batches.
CLIENT_REQUEST_ID: ContextVar[str | None] = ContextVar("client_request_id", default=None)


def _with_client_request_id(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    client_id = CLIENT_REQUEST_ID.get()
    if client_id is None:
        return headers
    return {**(headers or {}), CLIENT_REQUEST_ID_HEADER: client_id}


class UpstreamUnreachable(UpstreamError):
    """The upstream could not be reached or broke off its answer (502, code `upstream_unreachable`), did not answer
    in time (504, `upstream_timeout`), or sent a line past the limit (502, `upstream_bad_response`). An
    `UpstreamError`, so a config's fallback and retry treat it like any failing provider."""

    def __init__(self, message: str, *, code: str, status: int = 502, provider: str = "upstream") -> None:
        super().__init__(message, status=status, provider=provider, code=code)


@contextmanager
def _upstream_errors(host: str) -> Iterator[None]:
    """The transports' connection and timeout errors, as the one error tree (DESIGN.md §6). Refusals pass
    through."""
    try:
        yield
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors too
        raise UpstreamUnreachable(
            f"The upstream '{host}' did not answer in time.", code="upstream_timeout", status=504
        ) from exc
    except TransportError as exc:
        code = "upstream_bad_response" if exc.bad_response else "upstream_unreachable"
        raise UpstreamUnreachable(f"The upstream '{host}' could not be reached: {exc}", code=code) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnreachable(
            f"The upstream '{host}' could not be reached: {exc}", code="upstream_unreachable"
        ) from exc


class _VettingResolver(AbstractResolver):
    """Resolves for the guarded connector and returns only addresses `vet_host` accepted, so the connector can
    connect nowhere else. A refusal propagates as UnsafeUpstream (aiohttp only wraps OSError)."""

    def __init__(self, allowlist: Allowlist, resolve: Resolver) -> None:
        self._allowlist = allowlist
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await vet_host(host, port, self._allowlist, resolve=self._resolve)
        results = [_resolve_result(host, ip, port) for ip in addresses if family in (socket.AF_UNSPEC, _family(ip))]
        if not results:
            raise OSError(f"'{host}' has no {family.name} address")
        return results

    async def close(self) -> None:
        return None


def _family(ip: IPAddress) -> socket.AddressFamily:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def _resolve_result(host: str, ip: IPAddress, port: int) -> ResolveResult:
    # Numeric flags: the connector must connect to this address as is, not look anything up again.
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    return {"hostname": host, "host": str(ip), "port": port, "family": _family(ip), "proto": 0, "flags": flags}


class UpstreamResponse:
    """An upstream answer: status and headers, and the body read whole or streamed. Valid inside `request()`."""

    def __init__(self, answer: Answer, host: str) -> None:
        self._answer = answer
        self._host = host
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def status(self) -> int:
        return self._answer.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            pairs = ((name.decode("latin-1"), value.decode("latin-1")) for name, value in self._answer.raw_headers)
            self._headers = CIMultiDictProxy(CIMultiDict(pairs))
        return self._headers

    async def read(self) -> bytes:
        with _upstream_errors(self._host):
            return await self._answer.read()

    async def text(self) -> str:
        raw = await self.read()
        try:
            return raw.decode(_charset(self.headers.get("content-type", "")), errors="replace")
        except LookupError:  # a charset Python does not know
            return raw.decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return json_codec.loads(await self.read())

    async def iter_chunks(self, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The body as it arrives, in chunks of at most `size` bytes."""
        while True:
            with _upstream_errors(self._host):
                chunk = await self._answer.next_chunk()
            if chunk is None:
                return
            for start in range(0, len(chunk), size):
                yield chunk[start : start + size]

    async def iter_lines(self, max_line_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[bytes]:
        """The body line by line (SSE, JSONL), without the LF or CRLF ending; a last unterminated line included.

        Once the unfinished line held back exceeds `max_line_bytes`, the stream ends with UpstreamUnreachable
        rather than growing a buffer for as long as an upstream cares to send without a newline.
        """
        buffer = b""
        async for chunk in self.iter_chunks():
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                yield line.removesuffix(b"\r")
            if len(buffer) > max_line_bytes:
                raise UpstreamUnreachable(
                    f"The upstream '{self._host}' sent a line longer than {max_line_bytes} bytes.",
                    code="upstream_bad_response",
                )
        if buffer:
            yield buffer.removesuffix(b"\r")


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL as parsed and judged without DNS: for the transport, where to connect and what to ask for."""

    url: URL
    host: str
    origin: Origin
    path: str  # the request target: path and query, as written in the URL


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


class UpstreamClient:
    """One per process: owns the guarded and the trusted transports (created on first use, in the loop), and the
    aiohttp sessions that carry WebSockets."""

    def __init__(
        self,
        allowlist: Allowlist | None = None,
        *,
        resolve: Resolver = system_resolve,
        max_connections: int = 1024,
        dns_cache_seconds: int = 10,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.allowlist = allowlist if allowlist is not None else Allowlist()
        self._tls = tls
        self._resolve = resolve
        self._max_connections = max_connections
        self._dns_cache_seconds = dns_cache_seconds
        self._transports: dict[bool, Http1Client] = {}
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        # URL -> what the DNS-free checks made of it (`_target`), with the allowlist it was judged against.
        self._parsed: dict[tuple[str, bool], _Target] = {}
        self._parsed_with = self.allowlist
        # (origin, trusted) -> (addresses, when they expire): vetted answers for guarded origins, the OS's for
        # trusted ones; with the allowlist they were judged against.
        self._addresses: dict[tuple[Origin, bool], tuple[Sequence[str], float]] = {}
        self._addresses_with = self.allowlist

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | str | AsyncIterable[bytes] | None = None,
        # Applied per phase (connect, each read), which a caller's asyncio.timeout cannot express.
        timeout: float | None,  # noqa: ASYNC109
        total_timeout: float | None = None,
        trusted: bool = False,
    ) -> AsyncIterator[UpstreamResponse]:
        """Send a request; the response is read inside the `async with` block and released when it ends.

        `timeout` bounds connecting (DNS included) and each wait for bytes, so a streamed answer may run as long as
        bytes keep coming; `total_timeout` bounds the whole exchange; None means no bound. A 3xx is returned as
        is. Raises UnsafeUpstream (400) when the guard refuses the URL, UpstreamUnreachable (502/504) when the
        upstream is not reached or does not answer in time.
        """
        target = self._target(url, trusted)
        fields = dict(_with_client_request_id(headers) or {})
        body: Body
        if json is not None:
            body = json_codec.dumps(json)
            if not any(name.lower() == "content-type" for name in fields):
                fields["Content-Type"] = "application/json"
        else:
            body = data.encode() if isinstance(data, str) else data
        transport = self._transport(trusted)
        with _upstream_errors(target.host):
            try:
                answer = await transport.request(
                    target.origin,
                    method,
                    target.path,
                    fields,
                    body,
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    total_timeout=total_timeout,
                )
            except MalformedHeader as error:  # a header the caller built with a line break in it
                raise InvalidRequest(f"An upstream request header is malformed: {error}") from None
        try:
            yield UpstreamResponse(answer, target.host)
        finally:
            answer.release()

    @asynccontextmanager
    async def websocket(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float | None,  # noqa: ASYNC109 - aiohttp applies it per phase, see request()
        trusted: bool = False,
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A WebSocket to `url` (http/https, upgraded), through the same guard and sessions as `request`.

        A refused handshake raises `UpstreamError` with the upstream's status, so routing treats it like a failed
        request."""
        target = self._target(url, trusted)
        host = target.host
        async with AsyncExitStack() as stack:
            with _upstream_errors(host):
                try:
                    socket = await stack.enter_async_context(
                        self._session(trusted).ws_connect(
                            target.url,
                            headers=headers,
                            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                            max_msg_size=16 * 1024 * 1024,
                        )
                    )
                except aiohttp.WSServerHandshakeError as error:
                    raise UpstreamError(
                        f"The upstream '{host}' refused the WebSocket: {error.status} {error.message}",
                        status=error.status or 502,
                        provider=host,
                        code="upstream_error",
                    ) from None
            yield socket

    def _target(self, url: str, trusted: bool) -> _Target:
        """The URL parsed and, unless trusted, judged by every check that needs no DNS. Those depend on the URL and
        the allowlist alone, so the answer is kept per URL (a batch sends thousands of requests to one URL); the
        addresses a name resolves to are still judged at every connect, by the connector's vetting resolver."""
        if self._parsed_with is not self.allowlist or len(self._parsed) >= MAX_PARSED_URLS:
            self._parsed, self._parsed_with = {}, self.allowlist
        found = self._parsed.get((url, trusted))
        if found is None:
            found = self._parsed[url, trusted] = self._judge(url, trusted)
        return found

    def _judge(self, url: str, trusted: bool) -> _Target:
        if trusted:
            parsed, host, port = parse_http_url(url)
        else:
            judged = parse_upstream_url(url, self.allowlist)
            parsed, host, port = judged.url, judged.host, judged.port
        origin = Origin(parsed.scheme.lower(), host, port)
        return _Target(parsed, host, origin, parsed.raw_path_qs or "/")

    def _transport(self, trusted: bool) -> Http1Client:
        transport = self._transports.get(trusted)
        if transport is None:
            resolve = self._trusted_addresses if trusted else self._vetted_addresses
            transport = self._transports[trusted] = Http1Client(resolve, limit=self._max_connections, tls=self._tls)
        return transport

    async def _vetted_addresses(self, origin: Origin) -> Sequence[str]:
        """Only addresses the guard accepts (every record judged): the transport connects nowhere else."""
        return await self._cached_addresses(origin, False, self._vet)

    async def _trusted_addresses(self, origin: Origin) -> Sequence[str]:
        return await self._cached_addresses(origin, True, self._lookup)

    async def _vet(self, origin: Origin) -> Sequence[str]:
        return [str(ip) for ip in await vet_host(origin.host, origin.port, self.allowlist, resolve=self._resolve)]

    async def _lookup(self, origin: Origin) -> Sequence[str]:
        if literal_address(origin.host) is not None:
            return [origin.host]
        return await system_resolve(origin.host, origin.port)

    async def _cached_addresses(
        self, origin: Origin, trusted: bool, find: Callable[[Origin], Awaitable[Sequence[str]]]
    ) -> Sequence[str]:
        if self._addresses_with is not self.allowlist or len(self._addresses) >= MAX_PARSED_URLS:
            self._addresses, self._addresses_with = {}, self.allowlist
        now = time.monotonic()
        cached = self._addresses.get((origin, trusted))
        if cached is not None and cached[1] > now:
            return cached[0]
        addresses = await find(origin)
        self._addresses[origin, trusted] = (addresses, now + self._dns_cache_seconds)
        return addresses

    def _session(self, trusted: bool) -> aiohttp.ClientSession:
        # No await between the check and the store, so concurrent first requests cannot create two sessions.
        session = self._sessions.get(trusted)
        if session is None or session.closed:
            resolver = None if trusted else _VettingResolver(self.allowlist, self._resolve)
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ttl_dns_cache=self._dns_cache_seconds,
                resolver=resolver,
                ssl=self._tls if self._tls is not None else True,
            )
            session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, raise_for_status=False
            )
            self._sessions[trusted] = session
        return session

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
