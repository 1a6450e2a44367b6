"""AWS event-stream framing (``application/vnd.amazon.eventstream``), the binary format of Bedrock's streams.

One message::

    total length (u32) | headers length (u32) | CRC32 of the previous 8 bytes (u32)
    headers: name length (u8), name, value type (u8; 7 = string), value length (u16), value
    payload
    CRC32 of everything before it (u32)

All integers are big-endian. Only string headers are written: that is all Bedrock's events use.
"""

from __future__ import annotations

import json
import struct
import zlib

STRING_HEADER = 7
PRELUDE = struct.Struct(">II")
CRC = struct.Struct(">I")


def encode_headers(headers: dict[str, str]) -> bytes:
    encoded = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack(">B", len(raw_name)) + raw_name
        encoded += struct.pack(">BH", STRING_HEADER, len(raw_value)) + raw_value
    return bytes(encoded)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded_headers = encode_headers(headers)
    total = PRELUDE.size + CRC.size + len(encoded_headers) + len(payload) + CRC.size
    prelude = PRELUDE.pack(total, len(encoded_headers))
    message = prelude + CRC.pack(zlib.crc32(prelude)) + encoded_headers + payload
    return message + CRC.pack(zlib.crc32(message))


def event(event_type: str, payload: object) -> bytes:
    """A Bedrock stream event: its JSON payload is the event member's body (e.g. ``{"delta": {...}}``)."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode())
