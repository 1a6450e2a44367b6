"""Result lines in OpenAI's batch output format.

    {"id": "batch_req_…", "custom_id": "…", "response": {"status_code", "request_id", "body"}, "error": null}

A 2xx goes to the output file. A failure goes to the error file: with the HTTP answer Portico gave for it (status
and error body) when there was one, or with `response: null` and `error: {code, message}` when there was none (the
upstream was unreachable or timed out, the window expired before the line ran).
"""

from __future__ import annotations

import secrets
from typing import Any

from portico import json_codec
from portico.errors import PorticoError

# Errors that mean no HTTP answer came back at all.
NO_ANSWER_CODES = frozenset({"upstream_unreachable", "upstream_timeout", "request_timeout"})
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def _random_id(prefix: str) -> str:
    """An id for one result line: unique (96 random bits), nothing more. Unlike `portico.ids.new_id` it carries no
    clock, since nothing lists or sorts these; that makes it several times cheaper, for two ids per line."""
    return prefix + secrets.token_hex(12)


def _line(custom_id: str | None, response: dict[str, Any] | None, error: dict[str, Any] | None) -> bytes:
    entry = {"id": _random_id("batch_req_"), "custom_id": custom_id, "response": response, "error": error}
    return json_codec.dumps(entry) + b"\n"


def succeeded(custom_id: str | None, body: dict[str, Any]) -> bytes:
    return _line(custom_id, {"status_code": 200, "request_id": _random_id("req_"), "body": body}, None)


def failed(custom_id: str | None, error: PorticoError) -> bytes:
    if error.code in NO_ANSWER_CODES:
        return _line(custom_id, None, {"code": error.code, "message": error.message})
    return _line(
        custom_id, {"status_code": error.status, "request_id": _random_id("req_"), "body": error.to_body()}, None
    )


def expired(custom_id: str | None) -> bytes:
    return _line(custom_id, None, {"code": "batch_expired", "message": EXPIRED_MESSAGE})
