"""The hot-path JSON codec (portico/json_codec.py): what it keeps from the standard library and where it differs."""

from __future__ import annotations

import json

import pytest

from portico import json_codec


def test_compact_utf8_and_round_trip() -> None:
    value = {"model": "m", "messages": [{"role": "user", "content": "café ☕", "n": 1.5, "ok": True, "none": None}]}
    encoded = json_codec.dumps(value)
    assert encoded == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert json_codec.loads(encoded) == value


def test_integers_past_64_bits_fall_back_to_the_standard_library() -> None:
    value = {"seed": 2**70, "small": -(2**63)}
    assert json_codec.dumps(value) == b'{"seed":1180591620717411303424,"small":-9223372036854775808}'


@pytest.mark.parametrize("raw", [b'{"n": NaN}', b'{"n": Infinity}', b"{'single': 1}", b'{"a": 1,}'])
def test_what_json_does_not_allow_is_refused_with_a_position(raw: bytes) -> None:
    with pytest.raises(json_codec.JSONDecodeError) as refused:
        json_codec.loads(raw)
    assert refused.value.msg and refused.value.pos >= 0
