"""Identifiers and secrets: object ids in OpenAI's style, API keys, and how keys are stored (hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _token(length: int) -> str:
    """`length` random base-62 characters from one read of the OS RNG (a read per character cost ~4 % of a batch
    worker's CPU). Eight random bits per character make the remainders' bias negligible: 256^n / 62^n > 4^n."""
    value = int.from_bytes(secrets.token_bytes(length), "big")
    digits = []
    for _ in range(length):
        value, remainder = divmod(value, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(digits)


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, remainder = divmod(value, 36)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """`file-…`, `batch_…`: a prefix, 11 characters of the microsecond clock, 13 random ones (~77 bits).

    Lists sort by (created_at, id) and `created_at` has whole seconds, so the clock part keeps objects made within
    one second in creation order. It uses digits and lowercase letters only: PostgreSQL's locale collations
    compare letters case-insensitively, which would scramble a mixed-case clock."""
    return f"{prefix}{_base36(time.time_ns() // 1000, 11)}{_token(13)}"


def new_uuid() -> str:
    """A time-ordered UUID (RFC 9562 version 7), so rows created within one second still sort in creation order.
    The 12 `rand_a` bits carry the sub-millisecond fraction of the clock (the RFC's "method 3")."""
    nanoseconds = time.time_ns()
    milliseconds, remainder = divmod(nanoseconds, 1_000_000)
    fraction = remainder * 4096 // 1_000_000
    value = (milliseconds & (2**48 - 1)) << 80 | 0x7 << 76 | fraction << 64 | 0b10 << 62 | secrets.randbits(62)
    # Formatted by hand: the same text as str(uuid.UUID(int=value)) at ~2 µs instead of ~5 (one per request log row).
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


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
