"""Google Vertex AI: Gemini chat over generateContent / streamGenerateContent (SSE), embeddings over `:predict`.

Auth is an OAuth bearer: a ready access token in the virtual key's `key`, or one minted from its service-account
JSON (google-auth, refreshed in a thread and cached until shortly before it expires). The project and location go
into the hostname and path, so they are validated strictly: a crafted location is an SSRF vector.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal

from portico.errors import AuthenticationFailed, InvalidRequest
from portico.ids import new_id
from providers.adapters.base import Forwarded, Json, NoForwarding, open_answer, translated
from providers.http import UpstreamClient
from providers.translate import gemini as translate

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

LOCATION = re.compile(r"^(global|[a-z]+-[a-z]+\d{1,2})$")
PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
TUNED_ENDPOINT = re.compile(r"^(projects/[a-z0-9-]+/locations/[a-z0-9-]+/)endpoints/(\d{1,32})$")
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_MARGIN = 300.0

_tokens: dict[str, tuple[str, float]] = {}


def _checked(value: str, pattern: re.Pattern[str], field: str) -> str:
    if not pattern.match(value):
        raise InvalidRequest(f"Invalid {field} '{value}'.", param=field, code="invalid_vertex_setting")
    return value


def _url(target: ResolvedTarget, model: str, action: str) -> str:
    location = _checked(str(target.settings.get("vertexRegion", "")), LOCATION, "vertexRegion")
    project = _checked(str(target.settings.get("vertexProjectId", "")), PROJECT, "vertexProjectId")
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    base = f"{target.base_url or f'https://{host}'}/v1/projects/{project}/locations/{location}"
    # A tuned model is served by its endpoint (what a tuning job's `tunedModel.endpoint` names), in the key's own
    # project and location only.
    tuned = TUNED_ENDPOINT.match(model)
    if tuned and tuned.group(1) == f"projects/{project}/locations/{location}/":
        return f"{base}/endpoints/{tuned.group(2)}:{action}"
    _checked(model, MODEL, "model")
    return f"{base}/publishers/google/models/{model}:{action}"


def _mint(service_account_json: str) -> tuple[str, float]:
    from google.auth.transport.requests import Request as GoogleRequest
    from google.oauth2 import service_account

    info = json.loads(service_account_json)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])  # type: ignore[no-untyped-call]
    credentials.refresh(GoogleRequest())
    expiry = credentials.expiry.timestamp() if credentials.expiry else time.time() + 3000
    return str(credentials.token), expiry


async def access_token(target: ResolvedTarget) -> str:
    if target.secrets.get("key"):
        return str(target.secrets["key"])
    account = target.secrets.get("vertexServiceAccountJson")
    if not account:
        raise AuthenticationFailed(
            "This Vertex virtual key has neither an access token ('key') nor 'vertexServiceAccountJson'.",
            param="x-portkey-virtual-key",
        )
    cache_key = str(account)
    cached = _tokens.get(cache_key)
    if cached and cached[1] - REFRESH_MARGIN > time.time():
        return cached[0]
    token, expiry = await asyncio.to_thread(_mint, cache_key)
    _tokens[cache_key] = (token, expiry)
    return token


class VertexAdapter(NoForwarding):
    # Not offered: moderation (Vertex has none; text moderation is the Natural Language API), audio, and models.
    # Imagen (`:predict` with `instances[].prompt`) could serve image generation with its own translation; until
    # then the gateway answers 400 naming the capability.
    capabilities = frozenset({"chat", "chat_stream", "embeddings"})

    async def _post(
        self, http: UpstreamClient, target: ResolvedTarget, url: str, payload: Json, timeout_s: float | None
    ) -> Json:
        headers = {"authorization": f"Bearer {await access_token(target)}"}
        answer = await open_answer(http, target, "POST", url, headers=headers, json=payload, timeout_s=timeout_s)
        return await answer.json()

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json:
        model = str(body.get("model", ""))
        request = translated(translate.chat_to_gemini, body)
        answer = await self._post(http, target, _url(target, model, "generateContent"), request, timeout_s)
        return translate.gemini_to_chat(
            answer, model=model, completion_id=new_id("chatcmpl-"), created=int(time.time())
        )

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json:
        model = str(body.get("model", ""))
        request = translated(translate.embedding_predict_body, body)
        answer = await self._post(http, target, _url(target, model, "predict"), request, timeout_s)
        encoding: Literal["float", "base64"] = "base64" if body.get("encoding_format") == "base64" else "float"
        return translate.embedding_response(model, answer, encoding_format=encoding)

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]:
        model = str(body.get("model", ""))
        url = _url(target, model, "streamGenerateContent") + "?alt=sse"
        request = translated(translate.chat_to_gemini, body)
        headers = {"authorization": f"Bearer {await access_token(target)}"}
        answer = await open_answer(http, target, "POST", url, headers=headers, json=request, timeout_s=timeout_s)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        translator = translate.GeminiStreamTranslator(
            model, new_id("chatcmpl-"), int(time.time()), include_usage=include_usage
        )
        return _stream(answer, translator)


async def _stream(answer: Forwarded, translator: translate.GeminiStreamTranslator) -> AsyncIterator[Json]:
    # streamGenerateContent?alt=sse frames each GenerateContentResponse as a `data:` line, as OpenAI frames chunks.
    async for payload in answer.sse_json():
        for chunk in translator.feed(payload):
            yield chunk
