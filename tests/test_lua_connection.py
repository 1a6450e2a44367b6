"""Scripts on a connection of their own (`batch.managed.lua.OwnConnection`, the checkpoint writer's path), against
the real Redis-compatible server: the script cache flushed, the connection killed by the server, a call cancelled
while its reply is on the way. Each time the next call must get its own answer."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from batch.managed.lua import LuaScript, OwnConnection
from tests.conftest import private_redis_database

SET_AND_GET = LuaScript("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
# Busy for some tens of ms of server time, then answers "slow" (a counted loop: TIME stands still in a script).
SLOW = LuaScript("local n = 0; for i = 1, 3000000 do n = n + i end; return 'slow'")


async def _kill_other_clients_of(client: Redis, database: int) -> int:
    """Kill every connection to `database` except `client`'s own; how many there were."""
    own = await client.client_id()
    others = [entry for entry in await client.client_list() if int(entry["db"]) == database]
    victims = [entry["id"] for entry in others if int(entry["id"]) != own]
    for victim in victims:
        await client.client_kill_filter(_id=victim)
    return len(victims)


async def test_an_own_connection_recovers_from_a_flushed_cache_a_kill_and_a_cancel(redis_url: str) -> None:
    url = private_redis_database(redis_url)
    database = int(url.rsplit("/", 1)[1])
    client = Redis.from_url(url)
    link = OwnConnection(client)
    try:
        # First call: the server has not seen the script (NOSCRIPT), so it is loaded and run.
        assert await link.run(SET_AND_GET, ["k"], ["one"]) == b"one"
        assert await client.get("k") == b"one", "the own connection uses the client's logical database"

        await client.script_flush()
        assert await link.run(SET_AND_GET, ["k"], [b"two"]) == b"two"

        assert await _kill_other_clients_of(client, database) == 1
        with pytest.raises(RedisConnectionError):
            await link.run(SET_AND_GET, ["k"], ["lost"])
        assert await link.run(SET_AND_GET, ["k"], [3]) == b"3", "the next call connects again"

        await client.script_load(SLOW.source)
        started = asyncio.get_running_loop().time()
        assert await link.run(SLOW, [], []) == b"slow"
        busy = asyncio.get_running_loop().time() - started
        slow = asyncio.create_task(link.run(SLOW, [], []))
        await asyncio.sleep(busy / 3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await asyncio.sleep(busy)  # until the server is done with it
        # The cancelled call's reply ("slow") must not be taken for this one's.
        assert await link.run(SET_AND_GET, ["k"], ["four"]) == b"four"
    finally:
        await client.aclose()
