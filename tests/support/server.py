"""The real Portico app under uvicorn on 127.0.0.1, in a background thread with its own event loop.

Tests talk to it only over HTTP, with clients nobody here wrote (openai, portkey-ai, the MCP SDK, httpx).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from pydantic import SecretStr

from control_plane.bootstrap import bootstrap
from portico.app import create_app
from portico.services import close_services, open_services
from portico.settings import Settings
from workers.worker import build_worker

ADMIN_KEY = "pk-test-admin-0123456789abcdefghijklmnopqrstuv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningPortico:
    url: str
    admin_key: str
    settings: Settings

    @property
    def api(self) -> str:
        return f"{self.url}/v1"

    @property
    def mcp(self) -> str:
        return f"{self.url}/mcp"


@contextlib.contextmanager
def run_portico(settings: Settings, *, worker: bool = False) -> Iterator[RunningPortico]:
    """Open services (migrating the schema), bootstrap the organisation, serve until the block exits. With
    `worker`, an arq worker runs in the same event loop, as `portico up` runs it (settings.redis_url required)."""
    if settings.admin_api_key is None:
        settings.admin_api_key = SecretStr(ADMIN_KEY)
    port = free_port()
    started = threading.Event()
    failure: list[BaseException] = []
    holder: dict[str, uvicorn.Server] = {}

    async def serve() -> None:
        services = await open_services(settings)
        try:
            await bootstrap(services)
            config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
            server = uvicorn.Server(config)
            holder["server"] = server
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.01)
            jobs = build_worker(settings, handle_signals=False) if worker else None
            jobs_task = asyncio.create_task(jobs.async_run()) if jobs else None
            started.set()
            try:
                await task
            finally:
                if jobs is not None and jobs_task is not None:
                    await jobs.close()
                    jobs_task.cancel()
        finally:
            await close_services(services)

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:  # noqa: BLE001 - surfaced to the test thread below
            failure.append(error)
            started.set()

    thread = threading.Thread(target=main, name=f"portico-{port}", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise RuntimeError("Portico failed to start") from failure[0]
    try:
        key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else ADMIN_KEY
        yield RunningPortico(url=f"http://127.0.0.1:{port}", admin_key=key, settings=settings)
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(30)
