"""Reading a request body as one JSON object, with errors that say what is wrong with it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from portico import json_codec
from portico.errors import InvalidRequest, PayloadTooLarge

# A chat request with a few images inlined as base64 fits well within this; anything larger is a file.
MAX_JSON_BYTES = 32 * 1024 * 1024


async def _capped_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` (by Content-Length, or while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The JSON body exceeds {limit} bytes; send large data as a file.", param="body")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise PayloadTooLarge(f"The JSON body exceeds {limit} bytes; send large data as a file.", param="body")
    return bytes(received)


async def json_object(request: Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    raw = await _capped_body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = json_codec.loads(raw)
    except json_codec.JSONDecodeError as error:
        message = f"The body is not valid JSON: {error.msg} at position {error.pos}."
        raise InvalidRequest(message, param="body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", param="body")
    return body
