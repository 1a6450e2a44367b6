"""AWS Bedrock runtime: chat over Converse / ConverseStream, embeddings over InvokeModel, signed with SigV4.

Requests are signed with botocore's signer and sent by Portico's own upstream client (boto3's client is
synchronous and pools per client, which would cost a thread per request under load).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from portico.errors import InvalidRequest, UpstreamError
from portico.ids import new_id
from providers.adapters.base import Forwarded, Json, NoForwarding, open_answer, translated
from providers.http import UpstreamClient
from providers.translate import bedrock as translate

if TYPE_CHECKING:
    from gateway.targets import ResolvedTarget

SERVICE = "bedrock"


def _region(target: ResolvedTarget) -> str:
    region = str(target.settings.get("awsRegion") or "")
    if not region.replace("-", "").isalnum():
        raise InvalidRequest(f"Invalid awsRegion '{region}' on the virtual key.", param="awsRegion")
    return region


def _url(target: ResolvedTarget, model: str, action: str) -> str:
    base = target.base_url or f"https://bedrock-runtime.{_region(target)}.amazonaws.com"
    return f"{base}/model/{quote(model, safe='')}/{action}"


def signed_headers(target: ResolvedTarget, url: str, payload: bytes, accept: str) -> dict[str, str]:
    secrets = target.secrets
    credentials = Credentials(
        str(secrets.get("awsAccessKeyId", "")),
        str(secrets.get("awsSecretAccessKey", "")),
        secrets.get("awsSessionToken") or None,
    )
    request = AWSRequest(
        method="POST", url=url, data=payload, headers={"content-type": "application/json", "accept": accept}
    )
    SigV4Auth(credentials, SERVICE, _region(target)).add_auth(request)
    return dict(request.headers.items())


def _model(body: Json) -> str:
    return str(body.get("model", ""))


class BedrockAdapter(NoForwarding):
    # Not offered: moderation (Bedrock has none; Guardrails is a different API), audio, and models (listing is
    # the `bedrock` control-plane API, not bedrock-runtime). Image models (Titan Image, Stability) would need their
    # own request translation through InvokeModel; until then the gateway answers 400 naming the capability.
    capabilities = frozenset({"chat", "chat_stream", "embeddings"})

    async def _invoke(
        self, http: UpstreamClient, target: ResolvedTarget, url: str, payload: Json, timeout_s: float | None
    ) -> Json:
        data = json.dumps(payload).encode()
        headers = signed_headers(target, url, data, "application/json")
        answer = await open_answer(http, target, "POST", url, headers=headers, data=data, timeout_s=timeout_s)
        return await answer.json()

    async def chat(self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None) -> Json:
        model = _model(body)
        converse = translated(translate.chat_to_converse, body)
        answer = await self._invoke(http, target, _url(target, model, "converse"), converse, timeout_s)
        return translate.converse_to_chat(
            answer, model=model, completion_id=new_id("chatcmpl-"), created=int(time.time())
        )

    async def embeddings(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> Json:
        model = _model(body)
        url = _url(target, model, "invoke")
        answers = [
            await self._invoke(http, target, url, request, timeout_s)
            for request in translated(lambda b: {"bodies": translate.embedding_requests(b)}, body)["bodies"]
        ]
        encoding: Literal["float", "base64"] = "base64" if body.get("encoding_format") == "base64" else "float"
        return translate.embedding_response(model, answers, encoding_format=encoding)

    async def open_chat_stream(
        self, http: UpstreamClient, target: ResolvedTarget, body: Json, timeout_s: float | None
    ) -> AsyncIterator[Json]:
        model = _model(body)
        url = _url(target, model, "converse-stream")
        data = json.dumps(translated(translate.chat_to_converse, body)).encode()
        headers = signed_headers(target, url, data, "application/vnd.amazon.eventstream")
        answer = await open_answer(http, target, "POST", url, headers=headers, data=data, timeout_s=timeout_s)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        translator = translate.ConverseStreamTranslator(
            model, new_id("chatcmpl-"), int(time.time()), include_usage=include_usage
        )
        return _stream(answer, translator, target.provider)


async def _stream(
    answer: Forwarded, translator: translate.ConverseStreamTranslator, provider: str
) -> AsyncIterator[Json]:
    """Decode AWS event-stream frames; an exception frame mid-stream becomes an upstream error."""
    frames = EventStreamBuffer()
    async for raw in answer.iter_chunks():
        frames.add_data(raw)
        for frame in frames:
            message: Any = frame  # botocore's stubs type the iteration wrongly (as int)
            headers: dict[str, Any] = dict(message.headers)
            payload = json.loads(message.payload or b"{}")
            if headers.get(":message-type") != "event":
                kind = headers.get(":exception-type") or headers.get(":error-code") or "error"
                raise UpstreamError(f"{provider} stream failed: {kind}: {payload}", status=502, provider=provider)
            for chunk in translator.feed({str(headers.get(":event-type")): payload}):
                yield chunk
