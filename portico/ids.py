"""Identifiers and secrets: object ids in OpenAI's style, API keys, and how keys are stored (hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _base62(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, remainder = divmod(value, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """`file-…`, `batch_…`: a prefix, 10 characters of the microsecond clock, 14 random ones (~83 bits).

    Lists sort by (created_at, id) and `created_at` has whole seconds, so the clock part keeps objects made within
    one second in creation order."""
    return f"{prefix}{_base62(time.time_ns() // 1000, 10)}{_token(14)}"


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_api_key() -> str:
    """A Portkey-style API key; 40 random characters carry ~238 bits."""
    return f"pk-{_token(40)}"


def hash_secret(secret: str) -> str:
    """API keys are random and long, so a fast hash is enough (no password stretching needed) and keeps auth cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mask_key(key: str) -> str:
    return f"{key[:4]}{'*' * 7}{key[-2:]}"


def blob_key(kind: str, object_id: str) -> str:
    """Object keys are always generated: never a user path."""
    return f"{kind}/{object_id}"


def now() -> int:
    return int(time.time())
