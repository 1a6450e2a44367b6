"""A handler result that is raw bytes rather than a JSON object (file content, batch output)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class StreamedContent:
    chunks: AsyncIterator[bytes]
    media_type: str
    length: int | None = None
    filename: str | None = None
