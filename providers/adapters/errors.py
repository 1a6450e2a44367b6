"""Turning a provider's error answer into an `UpstreamError` that keeps its status, message and Retry-After."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

from portico.errors import UpstreamError
from portico.ids import now
from providers.http import UpstreamResponse


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now(), 0.0)
    except (TypeError, ValueError):
        return None


def _message(body: Any) -> str | None:
    # OpenAI and Google: {"error": {"message"}}; Bedrock: {"message"} or {"Message"}.
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "Message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


async def upstream_error(response: UpstreamResponse, provider: str) -> UpstreamError:
    raw = await response.read()
    try:
        detail = _message(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        detail = None
    text = detail or raw[:300].decode("utf-8", "replace").strip() or "no details"
    return UpstreamError(
        f"{provider} answered {response.status}: {text}",
        status=response.status,
        provider=provider,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        code="upstream_error",
    )
