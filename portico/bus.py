"""The job bus: every change of a job (a batch, a fine-tune) is published on Redis, so any process can push it on
(MCP resource subscriptions, `wait_for_job`). Publishing is best-effort: the SQL row is the truth, and a subscriber
that misses a message reads the row again on the next one (or on its own timeout).

One channel per object, `portico:jobs:<kind>:<id>`, where `kind` is the resource collection (`batches`), so the
message's `uri` is the object's MCP resource. A message is a JSON object: `kind`, `id`, `uri`, the publisher's
payload (for batches `status` and the whole `batch`), and `workspace_id` when the publisher names it, which lets a
subscriber refuse to hand one workspace's update to another's listener even if their URIs collided.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from portico.context import Services
from portico.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "portico:jobs:"
ANY = "*"


def channel(kind: str, object_id: str) -> str:
    """`portico:jobs:batches:batch_abc`: one channel per object; kinds are the resource collections."""
    return f"{CHANNEL_PREFIX}{kind}:{object_id}"


def resource_uri(kind: str, object_id: str) -> str:
    return f"portico://{kind}/{object_id}"


async def publish(
    services: Services, kind: str, object_id: str, payload: dict[str, Any], *, workspace_id: str | None = None
) -> None:
    if services.redis is None:
        return
    message = {"kind": kind, "id": object_id, "uri": resource_uri(kind, object_id), **payload}
    if workspace_id is not None:
        message["workspace_id"] = workspace_id
    try:
        await services.redis.publish(channel(kind, object_id), json.dumps(message))
    except RedisError as error:
        log.warning("could not publish %s %s: %s", kind, object_id, error)


@contextlib.asynccontextmanager
async def subscribe(
    services: Services, kind: str = ANY, object_id: str = ANY
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """The messages of one object (or, with `*`, of every object of a kind, or of every job), as published from the
    moment the block is entered; leaving it unsubscribes. Connection failures surface as `RedisError`/`OSError`
    from the iterator: Redis does not replay, so the caller decides how to catch up (re-read what it watches)."""
    if services.redis is None:
        raise ServiceUnavailable("Job updates need Redis: set PORTICO_REDIS_URL (portico up starts an embedded one).")
    pubsub = services.redis.pubsub(ignore_subscribe_messages=True)
    try:
        name = channel(kind, object_id)
        # Exact names take SUBSCRIBE: an id is caller-supplied text, and PSUBSCRIBE would read `*?[` in it as a glob.
        await (pubsub.psubscribe(name) if ANY in (kind, object_id) else pubsub.subscribe(name))
        yield _messages(pubsub)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose unannotated


async def _messages(pubsub: PubSub) -> AsyncIterator[dict[str, Any]]:
    async for raw in pubsub.listen():
        if raw.get("type") not in ("message", "pmessage"):
            continue
        try:
            message = json.loads(raw["data"])
        except ValueError:
            log.warning("ignoring a malformed job message on %r", raw.get("channel"))
            continue
        if isinstance(message, dict):
            yield message
