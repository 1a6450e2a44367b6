"""OpenAI and every OpenAI-compatible upstream (Azure OpenAI, Groq, Together, vLLM, Ollama, …).

The body passes through unchanged; only the URL and the auth header depend on the provider (Azure names the
deployment in the path and takes `api-key`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from portico.errors import InvalidRequest, UpstreamError
from providers.adapters.base import Json
from providers.adapters.errors import upstream_error
from providers.http import UpstreamClient, UpstreamResponse

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

AZURE_API_VERSION = "2024-10-21"


def _azure_url(target: ResolvedTarget, path: str) -> str:
    settings = target.settings
    base = target.base_url or f"https://{settings['resourceName']}.openai.azure.com/openai"
    version = settings.get("apiVersion") or AZURE_API_VERSION
    return f"{base}/deployments/{settings.get('deploymentName', '')}{path}?api-version={version}"


def _azure(target: ResolvedTarget, path: str, key: str) -> tuple[str, dict[str, str]]:
    return _azure_url(target, path), {"api-key": key}


def _standard(target: ResolvedTarget, path: str, key: str) -> tuple[str, dict[str, str]]:
    if not target.base_url:
        raise InvalidRequest(
            f"Provider '{target.provider}' has no default endpoint: send x-portkey-custom-host.",
            param="x-portkey-custom-host",
        )
    return f"{target.base_url}{path}", ({"authorization": f"Bearer {key}"} if key else {})


# Providers whose URL or auth header differ from OpenAI's own.
_ENDPOINTS = {"azure-openai": _azure}


def endpoint(target: ResolvedTarget, path: str) -> tuple[str, dict[str, str]]:
    build = _ENDPOINTS.get(target.spec.name, _standard)
    return build(target, path, str(target.secrets.get("key") or ""))


class OpenAIAdapter:
    capabilities = frozenset({"chat", "chat_stream", "embeddings"})

    async def _post(
        self, http: UpstreamClient, target: ResolvedTarget, path: str, body: Json, timeout_s: float | None
    ) -> Json:
        url, headers = endpoint(target, path)
        async with http.request(
            "POST", url, headers=headers, json=body, timeout=timeout_s, trusted=target.trusted
        ) as response:
            if response.status != 200:
                raise await upstream_error(response, target.provider)
            result: Json = await response.json()
            return result

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json:
        return await self._post(http, target, "/chat/completions", body, timeout_s)

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json:
        return await self._post(http, target, "/embeddings", body, timeout_s)

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]:
        url, headers = endpoint(target, "/chat/completions")
        stack = AsyncExitStack()
        try:
            response = await stack.enter_async_context(
                http.request("POST", url, headers=headers, json=body, timeout=timeout_s, trusted=target.trusted)
            )
            if response.status != 200:
                raise await upstream_error(response, target.provider)
        except BaseException:
            await stack.aclose()
            raise
        return _sse_chunks(response, stack, target.provider)


async def _sse_chunks(response: UpstreamResponse, stack: AsyncExitStack, provider: str) -> AsyncIterator[Json]:
    async with stack:
        async for line in response.iter_lines():
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return
            chunk: Any = json.loads(payload)
            if isinstance(chunk, dict) and "error" in chunk:
                raise UpstreamError(f"{provider} failed mid-stream: {chunk['error']}", status=502, provider=provider)
            yield chunk
