"""Reading a request body as one JSON object, with errors that say what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from portico.errors import InvalidRequest


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        message = f"The body is not valid JSON: {error.msg} at position {error.pos}."
        raise InvalidRequest(message, param="body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", param="body")
    return body
