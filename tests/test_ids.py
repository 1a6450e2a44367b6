"""Identifiers (portico/ids.py)."""

from __future__ import annotations

import time
import uuid

from portico.ids import new_uuid


def test_new_uuid_is_a_version_7_uuid_in_canonical_text_and_time_ordered() -> None:
    first = new_uuid()
    time.sleep(0.002)
    second = new_uuid()
    for text in (first, second):
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 7, uuid.RFC_4122)
    assert first < second
    assert abs(int(first.replace("-", "")[:12], 16) - time.time_ns() // 1_000_000) < 60_000
