"""Requests in flight per route and worker process: `settings.batch.concurrency`, shared by every chunk of every
batch this process runs on that route, so a killed worker had at most that many requests in flight per route.

Semaphores are per event loop (one per process in production; tests run several apps, each in its own loop).
"""

from __future__ import annotations

import asyncio
import hashlib
from weakref import WeakKeyDictionary

from gateway.route import Route

_LIMITERS: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = WeakKeyDictionary()


def route_key(workspace_id: str, route: Route) -> str:
    """The same routing inputs in the same workspace share one limit, whichever batch they come from. Hashed, so no
    provider key sits in a dictionary key."""
    text = f"{workspace_id}\n{route.model_dump_json(exclude_none=True)}"
    return hashlib.sha256(text.encode()).hexdigest()


def limiter(key: str, size: int) -> asyncio.Semaphore:
    per_loop = _LIMITERS.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(key)
    if found is None:
        found = per_loop[key] = asyncio.Semaphore(size)
    return found
