"""Connecting a socket to the first of several addresses that answers, as RFC 8305 ("happy eyeballs") describes.

A host often has IPv6 and IPv4 addresses, and one family may be unreachable in a way that never fails fast (packets
dropped: the connect waits for the kernel to give up, minutes later). So the addresses are tried in an order that
alternates families, and when one has not connected within `STAGGER_SECONDS` the next starts beside it; the first
to connect wins and every other attempt is stopped and its socket closed. A single address is simply connected.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from providers.http1_protocol import TransportError

# RFC 8305 recommends 250 ms between attempts.
STAGGER_SECONDS = 0.25


def interleaved(addresses: Sequence[str]) -> list[str]:
    """The addresses with families alternating, each family's own order kept, the first address's family first."""
    if not addresses:
        return []
    first_v6 = ":" in addresses[0]
    same = [a for a in addresses if (":" in a) == first_v6]
    other = [a for a in addresses if (":" in a) != first_v6]
    mixed: list[str] = []
    for index in range(max(len(same), len(other))):
        mixed += same[index : index + 1] + other[index : index + 1]
    return mixed


async def connect_first(addresses: Sequence[str], port: int) -> socket.socket:
    """A connected non-blocking TCP socket to one of `addresses`; TransportError naming every failure if none
    connects. Cancelling it (a timeout around it) stops and closes every attempt."""
    failures: list[str] = []
    pending: set[asyncio.Task[socket.socket]] = set()
    winner: socket.socket | None = None
    try:
        for address in interleaved(addresses):
            pending.add(asyncio.create_task(_attempt(address, port)))
            done, pending = await asyncio.wait(pending, timeout=STAGGER_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            winner = _first_connected(done, failures)
            if winner is not None:
                return winner
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winner = _first_connected(done, failures)
            if winner is not None:
                return winner
    finally:
        await _stop(pending)
    raise TransportError(f"cannot connect ({'; '.join(failures) or 'no address'})")


async def _attempt(address: str, port: int) -> socket.socket:
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY: a request written in two parts must not wait for a delayed ACK.
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except OSError as error:
        sock.close()
        raise OSError(f"{address}: {error.strerror or error}") from None
    except BaseException:
        sock.close()
        raise
    return sock


def _first_connected(done: set[asyncio.Task[socket.socket]], failures: list[str]) -> socket.socket | None:
    """The socket of one attempt that connected (any other that did too is closed); failures are noted."""
    winner = None
    for task in done:
        error = task.exception()
        if error is not None:
            failures.append(str(error))
        elif winner is None:
            winner = task.result()
        else:
            task.result().close()
    return winner


async def _stop(pending: set[asyncio.Task[socket.socket]]) -> None:
    """Cancel the attempts still running; one that connected meanwhile has its socket closed."""
    for task in pending:
        task.cancel()
    for outcome in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(outcome, socket.socket):
            outcome.close()
