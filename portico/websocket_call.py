"""What a WebSocket operation's handler receives: the accepted-or-not socket and its handshake details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.websockets import WebSocket


@dataclass
class WebSocketCall:
    socket: WebSocket
    query: Mapping[str, str]
    headers: Mapping[str, str]
    subprotocols: list[str]
