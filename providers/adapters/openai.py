"""OpenAI and every OpenAI-compatible upstream (Azure OpenAI, Groq, Together, vLLM, Ollama, …).

The body passes through unchanged; only the URL and the auth header depend on the provider (Azure names the
deployment in the path and takes `api-key`). Every OpenAI endpoint is offered: one a given vendor lacks (Groq has
no images) answers with that vendor's own 404, passed through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from portico.errors import InvalidRequest
from providers.adapters.base import Forward, Forwarded, Json, open_answer
from providers.http import UpstreamClient

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
    capabilities = frozenset(
        {
            "chat",
            "chat_stream",
            "embeddings",
            "completions",
            "completions_stream",
            "moderations",
            "image_generation",
            "image_edits",
            "image_variations",
            "speech",
            "transcriptions",
            "translations",
            "model_listing",
            "model_deletion",
            "realtime",
        }
    )

    async def _post(
        self, http: UpstreamClient, target: ResolvedTarget, path: str, body: Json, timeout_s: float | None
    ) -> Json:
        answer = await self.forward(http, target, Forward("POST", path, json=body), timeout_s)
        return await answer.json()

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json:
        return await self._post(http, target, "/chat/completions", body, timeout_s)

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json:
        return await self._post(http, target, "/embeddings", body, timeout_s)

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]:
        answer = await self.forward(http, target, Forward("POST", "/chat/completions", json=body), timeout_s)
        return answer.sse_json()

    async def forward(
        self, http: UpstreamClient, target: ResolvedTarget, request: Forward, timeout_s: float | None
    ) -> Forwarded:
        url, headers = endpoint(target, request.path)
        data = None
        if request.raw is not None:
            headers = {**headers, "content-type": request.raw.content_type}
            if request.raw.length is not None:
                # Sent as is rather than chunked: some upstreams refuse a chunked multipart upload.
                headers["content-length"] = str(request.raw.length)
            data = request.raw.chunks()
        return await open_answer(
            http, target, request.method, url, headers=headers, json=request.json, data=data, timeout_s=timeout_s
        )
