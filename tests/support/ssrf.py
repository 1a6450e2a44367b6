"""Shared pieces of the SSRF tests: a fake DNS zone injected through the `Resolver` seam, the refusal fragments, and
the `connects` fixture that refuses any connection but 127.0.0.1 before it leaves the machine.
"""

from __future__ import annotations

import socket
from asyncio.selector_events import BaseSelectorEventLoop
from dataclasses import dataclass, field
from typing import Any

import pytest

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


@dataclass
class FakeDns:
    """name -> successive answers (the last one repeats); an unknown name fails as NXDOMAIN. Records lookups."""

    answers: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        series = self.answers.get(host)
        if not series:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return series[min(self.lookups.count(host), len(series)) - 1]


@pytest.fixture(autouse=True, name="connects")
def connects_fixture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The address of every outbound connection attempted during the test; all but 127.0.0.1 are refused unsent.

    Portico's transport, and aiohttp (WebSockets) through aiohappyeyeballs, connect with the event loop's
    `sock_connect`: that is the one door.
    """
    attempted: list[str] = []
    original = BaseSelectorEventLoop.sock_connect

    async def loopback_only(loop: BaseSelectorEventLoop, sock: socket.socket, address: Any) -> None:
        attempted.append(address[0])
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"this test may only connect to 127.0.0.1, not {address[0]}")
        await original(loop, sock, address)

    monkeypatch.setattr(BaseSelectorEventLoop, "sock_connect", loopback_only)
    return attempted


ZONE = {
    "evil.example": [["10.0.0.5"]],
    "mixed.example": [[PUBLIC_V4, "10.0.0.5"]],
    "inward6.example": [[PUBLIC_V6, "::1"]],
    "metadata-alias.example": [["169.254.169.254"]],
    "mapped.example": [["::ffff:127.0.0.1"]],
    "cgnat.example": [["100.64.1.2"]],
    "public.example": [[PUBLIC_V4, PUBLIC_V6]],
    "ollama.default.svc.cluster.local": [["10.0.0.5"]],
    "ollama": [["172.18.0.4"]],
    "localhost": [["127.0.0.1", "::1"]],
}

LOOPBACK = "loopback"
PRIVATE = "private address (RFC 1918)"
METADATA = "cloud metadata endpoint"
SCHEME = "scheme must be http or https"
USERINFO = "user name or password"
