"""The small protocol every vendor adapter implements: OpenAI-shaped requests in, OpenAI-shaped results out.

Adapters translate and call; they do not route, retry or log (the gateway does). An upstream failure is raised as
`UpstreamError` carrying the provider's status and Retry-After, before any result is returned: for streams that
means before the first chunk, so a fallback can still move to another target.

Beyond chat and embeddings, OpenAI's API has endpoints that an OpenAI-compatible upstream serves as is (legacy
completions, moderations, images, audio, models). Those go through one generic `forward`: the gateway names the
method, the path and the body, the adapter adds the URL and the auth, and hands back the still-open answer. An
adapter lists what it serves in `capabilities`; the gateway checks that with `require` before calling, so a vendor
without those endpoints answers a clear 400 naming the capability and the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from portico import json_codec
from portico.errors import InvalidRequest, UpstreamError
from providers.adapters.errors import upstream_error
from providers.translate.errors import TranslationError

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget
    from providers.http import UpstreamClient, UpstreamResponse

Json = dict[str, Any]


class RawBody(Protocol):
    """A request body forwarded byte for byte (a multipart form, boundary and all)."""

    content_type: str
    # The byte count when known up front (sent as Content-Length); None sends it chunked.
    length: int | None

    def chunks(self) -> AsyncIterator[bytes]:
        """The whole body from its first byte: each attempt (a retry, a fallback) iterates it afresh."""
        ...


@dataclass(frozen=True)
class Forward:
    """One call to an OpenAI-compatible path, relative to the provider's base URL (e.g. "/images/edits")."""

    method: str
    path: str
    json: Json | None = None
    raw: RawBody | None = None


class Forwarded:
    """A 2xx upstream answer, still open. Read it once, whole (`json`, `read`) or as it arrives (`iter_chunks`,
    `sse_json`); each of those releases the connection when it ends, and `aclose` releases it unread."""

    def __init__(self, response: UpstreamResponse, stack: AsyncExitStack, provider: str) -> None:
        self._response = response
        self._stack = stack
        self.provider = provider

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type") or "application/octet-stream"

    @property
    def content_length(self) -> int | None:
        # The upstream client decompresses a gzip answer as it reads, so a compressed length would not match the bytes
        # relayed.
        declared = self._response.headers.get("content-length")
        if declared is None or not declared.isdigit() or self._response.headers.get("content-encoding"):
            return None
        return int(declared)

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() == "application/json"

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def read(self) -> bytes:
        async with self._stack:
            return await self._response.read()

    async def json(self) -> Json:
        raw = await self.read()
        try:
            body = json_codec.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamError(
                f"{self.provider} answered with something other than a JSON object: {raw[:200]!r}",
                status=502,
                provider=self.provider,
                code="upstream_bad_response",
            )
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        async with self._stack:
            async for chunk in self._response.iter_chunks():
                yield chunk

    async def sse_json(self) -> AsyncIterator[Json]:
        """OpenAI's server-sent events: each `data:` line's JSON until `data: [DONE]`; an error event mid-stream
        (OpenAI sends `{"error": ...}` after a 200) becomes an upstream error."""
        async with self._stack:
            async for line in self._response.iter_lines():
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return
                chunk: Any = json_codec.loads(payload)
                if isinstance(chunk, dict) and "error" in chunk:
                    raise UpstreamError(
                        f"{self.provider} failed mid-stream: {chunk['error']}", status=502, provider=self.provider
                    )
                yield chunk


class ProviderAdapter(Protocol):
    # What this adapter serves: "chat", "chat_stream", "embeddings", and through `forward`: "completions",
    # "completions_stream", "moderations", "image_generation", "image_edits", "image_variations", "speech",
    # "transcriptions", "translations", "model_listing", "model_deletion".
    capabilities: frozenset[str]

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json: ...

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]: ...

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json: ...

    async def forward(
        self, http: UpstreamClient, target: ResolvedTarget, request: Forward, timeout_s: float | None
    ) -> Forwarded: ...


class NoForwarding:
    """For vendors without OpenAI-compatible paths (Bedrock, Vertex). Their `capabilities` list none of the
    forwarded operations, so `require` refuses first and this is reached only by a gateway bug."""

    async def forward(
        self, http: UpstreamClient, target: ResolvedTarget, request: Forward, timeout_s: float | None
    ) -> Forwarded:
        raise InvalidRequest(
            f"Provider '{target.provider}' has no OpenAI-compatible {request.method} {request.path}.",
            code="unsupported_capability",
        )


class UnsupportedCapability(InvalidRequest):
    """This target cannot serve the request, though another could: a fallback moves on to the next target."""


def require(adapter: ProviderAdapter, capability: str, provider: str) -> None:
    if capability not in adapter.capabilities:
        raise UnsupportedCapability(
            f"Provider '{provider}' does not support {capability.replace('_', ' ')} through Portico.",
            param="model",
            code="unsupported_capability",
        )


async def open_answer(
    http: UpstreamClient,
    target: ResolvedTarget,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json: Json | None = None,
    data: Any = None,
    timeout_s: float | None,
) -> Forwarded:
    """Send one request and keep its answer open; a non-2xx answer is read, closed and raised as the provider's
    error before anything is returned, so routing can still retry or fall back."""
    stack = AsyncExitStack()
    try:
        response = await stack.enter_async_context(
            http.request(method, url, headers=headers, json=json, data=data, timeout=timeout_s, trusted=target.trusted)
        )
        if not 200 <= response.status < 300:
            raise await upstream_error(response, target.provider)
    except BaseException:
        await stack.aclose()
        raise
    return Forwarded(response, stack, target.provider)


def translated(build: Callable[[Json], Json], body: Json) -> Json:
    """A vendor translation whose refusal (a field the vendor cannot take) becomes a 400 naming that field."""
    try:
        return build(body)
    except TranslationError as error:
        raise InvalidRequest(error.message, param=error.param, code="unsupported_for_provider") from None
