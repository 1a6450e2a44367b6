"""The small protocol every vendor adapter implements: OpenAI-shaped requests in, OpenAI-shaped results out.

Adapters translate and call; they do not route, retry or log (the gateway does). An upstream failure is raised as
`UpstreamError` carrying the provider's status and Retry-After, before any result is returned: for streams that
means before the first chunk, so a fallback can still move to another target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from portico.errors import InvalidRequest

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget
    from providers.http import UpstreamClient

Json = dict[str, Any]


class ProviderAdapter(Protocol):
    # Operation names this adapter serves: "chat", "chat_stream", "embeddings", "models".
    capabilities: frozenset[str]

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json: ...

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]: ...

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json: ...


def require(adapter: ProviderAdapter, capability: str, provider: str) -> None:
    if capability not in adapter.capabilities:
        raise InvalidRequest(
            f"Provider '{provider}' does not support {capability.replace('_', ' ')} through Portico.",
            param="model",
            code="unsupported_capability",
        )
