"""JSON on the hot paths (request bodies, upstream calls, answers, batch lines): orjson, ~3-5x cheaper than the
standard library's encoder and decoder on chat-sized documents.

Compact output, UTF-8 as is (no `\\u` escapes), and `loads` refuses what JSON does not allow (NaN, Infinity), as
the standard library does not. Values orjson cannot encode but `json` can (integers past 64 bits) fall back to it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

JSONDecodeError = json.JSONDecodeError  # orjson's is a subclass: `msg` and `pos` as the standard library's


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(raw)


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer past 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
