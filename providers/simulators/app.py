"""Build and run a simulator: a Starlette app per vendor kind, served by uvicorn.

A kind is its vendor's edge conventions (`Dialect`) plus the route modules it serves; job APIs (files, batches,
fine-tuning) join a kind as further route modules. Every kind also serves ``GET /_sim/stats`` and
``POST /_sim/reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from providers.simulators import (
    bedrock,
    bedrock_control,
    bedrock_customization_jobs,
    bedrock_invocation_jobs,
    openai,
    openai_jobs,
    openai_media,
    openai_models,
    openai_realtime,
    vertex,
    vertex_batch,
    vertex_tuning,
)
from providers.simulators.controls import SimulatorControls, control_routes
from providers.simulators.edge import Dialect


@dataclass(frozen=True)
class SimulatorKind:
    dialect: Dialect
    route_modules: tuple[Callable[[], list[BaseRoute]], ...]
    default_port: int
    # How a client reaches it, for the banner: the base URL to configure, given the server's root URL.
    client_hint: Callable[[str], str]


KINDS: dict[str, SimulatorKind] = {
    "openai": SimulatorKind(
        openai.DIALECT,
        (openai.routes, openai_models.routes, openai_media.routes, openai_realtime.routes, openai_jobs.routes),
        8801,
        lambda url: f"OpenAI base URL {url}/v1 (any Bearer key)",
    ),
    "bedrock": SimulatorKind(
        bedrock.DIALECT,
        (bedrock.routes, bedrock_control.routes, bedrock_invocation_jobs.routes, bedrock_customization_jobs.routes),
        8802,
        lambda url: f"bedrock-runtime endpoint_url {url} (any SigV4 credentials)",
    ),
    "vertex": SimulatorKind(
        vertex.DIALECT,
        (vertex.routes, vertex_batch.routes, vertex_tuning.routes),
        8803,
        lambda url: f"Vertex API endpoint {url}/v1/projects/P/locations/L/... (any Bearer token)",
    ),
}


def kind_of(name: str) -> SimulatorKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown simulator {name!r}; choose one of {', '.join(KINDS)}") from None


def build_simulator(kind: str, controls: SimulatorControls | None = None) -> Starlette:
    spec = kind_of(kind)
    routes = [*control_routes(), *(route for module_routes in spec.route_modules for route in module_routes())]
    app = Starlette(routes=routes, exception_handlers={HTTPException: spec.dialect.http_exception})
    app.state.controls = controls if controls is not None else SimulatorControls()
    return app


async def run_simulator(
    kind: str, controls: SimulatorControls, *, host: str = "127.0.0.1", port: int | None, access_log: bool = True
) -> None:
    """Serve until interrupted (the `portico simulate` command)."""
    spec = kind_of(kind)
    port = spec.default_port if port is None else port
    app = build_simulator(kind, controls)
    # No proxy in front of a simulator: uvicorn's X-Forwarded-* middleware would only cost each request.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", lifespan="off", access_log=access_log, proxy_headers=False
    )
    server = uvicorn.Server(config)
    url = f"http://{host}:{port}"
    print(f"Portico {kind} simulator on {url}\n  {spec.client_hint(url)}\n  stats: GET {url}/_sim/stats", flush=True)
    await server.serve()


@contextlib.contextmanager
def running_simulator(kind: str, **controls: Any) -> Iterator[str]:
    """Serve a simulator on a free 127.0.0.1 port in a background thread; yields its base URL."""
    app = build_simulator(kind, SimulatorControls(**controls))
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it every
    # response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as error:  # noqa: BLE001 - surfaced to the caller's thread below
            failure.append(error)

    thread = threading.Thread(target=serve, name=f"simulator-{kind}-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        if not server.started:
            raise RuntimeError(f"the {kind} simulator did not start") from (failure[0] if failure else None)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
