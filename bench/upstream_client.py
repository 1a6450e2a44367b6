"""The upstream HTTP client's own cost: CPU per request of Portico's transport beside aiohttp's client, one run.

Both send the gateway benchmark's fixed chat request (~1 KB JSON, bench/gateway_upstream.py) to the same nginx
(pinned to the second core), from this process pinned to the first, on uvloop, N requests with C in flight:

- aiohttp: one `ClientSession` as Portico used it until it had its own transport (`json=` body, the answer read
  and decoded as JSON, redirects off, no cookie jar);
- portico: `providers.http.UpstreamClient` (trusted, so no guard: the same work as aiohttp's), body and answer
  handled the same way.

CPU is this process's user + system time over the measured requests (the kernel's share of each send and receive
included), after a warm-up round; rounds alternate, twice each. It prints figures and asserts nothing.

    bench/peers.sh                      # once: nginx
    python bench/upstream_client.py     # ~20 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

if not __package__:  # run as `python bench/upstream_client.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway_upstream import UPSTREAM_KEYS, request_body, upstream
from providers.http import UpstreamClient

Send = Callable[[], Awaitable[Any]]


async def measure(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs per request, requests per second) for `requests` sends with `concurrency` in flight."""
    left = iter(range(requests))

    async def lane() -> None:
        for _ in left:
            await send()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return 1e6 * cpu / requests, requests / wall


async def run(base: str, requests: int, concurrency: int) -> None:
    url = f"{base}/chat/completions"
    headers = {"Authorization": f"Bearer {UPSTREAM_KEYS['fast']}"}
    body = json.loads(request_body("fast"))
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
    portico = UpstreamClient()

    async def via_aiohttp() -> Any:
        async with session.post(url, json=body, headers=headers, allow_redirects=False) as response:
            return json.loads(await response.read())

    async def via_portico() -> Any:
        async with portico.request("POST", url, json=body, headers=headers, timeout=30, trusted=True) as response:
            return await response.json()

    clients: dict[str, Send] = {"aiohttp": via_aiohttp, "portico": via_portico}
    try:
        for send in clients.values():
            assert (await send())["object"] == "chat.completion"
            await measure(send, requests // 4, concurrency)  # warm-up: connections open, code paths hot
        print(f"{requests} requests, {concurrency} in flight, one core, uvloop:")
        for _ in range(2):
            for name, send in clients.items():
                cpu, rate = await measure(send, requests, concurrency)
                print(f"  {name:<8} {cpu:7.1f} µs CPU/request  {rate:9,.0f} requests/s", flush=True)
    finally:
        await session.close()
        await portico.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round (default 20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portico-bench-client-") as work, upstream(Path(work), 1) as found:
        base, _, _ = found
        os.sched_setaffinity(0, {0})
        uvloop.run(run(base, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
