"""MCP `tools/call` latency of a real data tool (`files_retrieve`) against the `echo` baseline, side by side.

Starts `portico serve` as a subprocess on 127.0.0.1 (SQLite and local blobs in a temp data directory), creates a
workspace, a workspace service key (scope completions.write) and one small file through REST, then calls both tools
through the MCP SDK's `Client` over streamable HTTP (`cache=None`, default protocol negotiation). At each
concurrency N there are N workers, each with its own `Client` session and HTTP connection pool. The two tools are
measured in alternating rounds (echo first in even rounds, files_retrieve first in odd ones), so drift and noise on
this shared machine land on both alike. Every worker warms up first.

    python bench/mcp_latency.py [--calls 2000] [--concurrency 1,16] [--round 200] [--pin | --no-pin]

Printed per tool and concurrency: p50, p99 and mean latency, calls/s (wall clock of that tool's rounds), and the
server's CPU time per call (user + system, all threads, from /proc). The goal reported against: files_retrieve
within 1.5x of echo at p50 and p99. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/mcp_latency.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.upload import ADMIN_KEY, portico_serve

GOAL_RATIO = 1.5
WARMUP_CALLS = 20
TOOLS = ("echo", "files_retrieve")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USABLE_CPUS = sorted(os.sched_getaffinity(0))


@dataclass
class Sample:
    """One tool at one concurrency: every call's latency, and the wall and server CPU time of its rounds."""

    latencies: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    errors: int = 0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def calls(self) -> int:
        return len(self.latencies)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --- setup through REST ---------------------------------------------------------------------------------------


def create_key_and_file(url: str) -> tuple[str, str]:
    """A workspace, its service key with completions.write, and one small file in it; returns (key, file id)."""
    admin = {"x-portkey-api-key": ADMIN_KEY}
    with httpx.Client(base_url=f"{url}/v1", timeout=30) as rest:
        workspace = rest.post("/admin/workspaces", json={"name": "mcp latency bench"}, headers=admin)
        workspace.raise_for_status()
        created = rest.post(
            "/api-keys/workspace/service",
            json={"name": "bench", "workspace_id": workspace.json()["id"], "scopes": ["completions.write"]},
            headers=admin,
        )
        created.raise_for_status()
        key = created.json()["key"]
        uploaded = rest.post(
            "/files",
            files={"file": ("notes.txt", b"hello from the mcp latency bench\n", "text/plain")},
            data={"purpose": "assistants"},
            headers={"authorization": f"Bearer {key}"},
        )
        uploaded.raise_for_status()
    return key, uploaded.json()["id"]


# --- the measurement ------------------------------------------------------------------------------------------


async def run_round(clients: list[Client], tool: str, arguments: dict[str, Any], calls: int, sample: Sample) -> None:
    """`calls` calls of `tool` shared out among the clients (each keeps one call in flight)."""
    remaining = calls

    async def worker(client: Client) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            sample.latencies.append(time.perf_counter() - started)
            sample.errors += bool(result.is_error)

    async with asyncio.TaskGroup() as group:
        for client in clients:
            group.create_task(worker(client))


async def measure_concurrency(
    mcp_url: str, key: str, file_id: str, server_pid: int, concurrency: int, calls: int, round_size: int
) -> dict[str, Sample]:
    arguments = {"echo": {"message": "ping"}, "files_retrieve": {"file_id": file_id}}
    samples = {tool: Sample() for tool in TOOLS}
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(concurrency):
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
            )
            transport = streamable_http_client(mcp_url, http_client=http)
            clients.append(await stack.enter_async_context(Client(transport, cache=None)))
        for tool in TOOLS:  # warm-up: connections, server-side caches, lazy imports
            await run_round(clients, tool, arguments[tool], WARMUP_CALLS * concurrency, Sample())
        rounds = -(-calls // round_size)
        for number in range(rounds):
            size = min(round_size, calls - number * round_size)
            order = TOOLS if number % 2 == 0 else TOOLS[::-1]
            for tool in order:
                sample = samples[tool]
                server_cpu, client_cpu = process_cpu_seconds(server_pid), time.process_time()
                started = time.perf_counter()
                await run_round(clients, tool, arguments[tool], size, sample)
                sample.wall_seconds += time.perf_counter() - started
                sample.server_cpu_seconds += process_cpu_seconds(server_pid) - server_cpu
                sample.client_cpu_seconds += time.process_time() - client_cpu
    return samples


# --- output ---------------------------------------------------------------------------------------------------


def print_results(results: dict[int, dict[str, Sample]]) -> None:
    header = ("tool", "conc", "calls", "p50 ms", "p99 ms", "mean ms", "calls/s", "server CPU ms/call", "errors")
    rows = []
    for concurrency, samples in results.items():
        for tool, s in samples.items():
            rows.append(
                (
                    tool,
                    str(concurrency),
                    str(s.calls),
                    f"{s.percentile(0.50) * 1000:.2f}",
                    f"{s.percentile(0.99) * 1000:.2f}",
                    f"{statistics.fmean(s.latencies) * 1000:.2f}",
                    f"{s.calls / s.wall_seconds:.0f}",
                    f"{s.server_cpu_seconds / s.calls * 1000:.2f}",
                    str(s.errors),
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nfiles_retrieve / echo (goal: within {GOAL_RATIO}x):")
    for concurrency, samples in results.items():
        echo, retrieve = samples["echo"], samples["files_retrieve"]
        p50 = retrieve.percentile(0.50) / echo.percentile(0.50)
        p99 = retrieve.percentile(0.99) / echo.percentile(0.99)
        cpu = (retrieve.server_cpu_seconds / retrieve.calls) / (echo.server_cpu_seconds / echo.calls)
        verdict = "within" if max(p50, p99) <= GOAL_RATIO else "OVER"
        print(f"  concurrency {concurrency:>3}: p50 {p50:.2f}x  p99 {p99:.2f}x  server CPU/call {cpu:.2f}x ({verdict})")
    print("\nclient CPU ms/call (this process, all workers; close to the latency means the client is the limit):")
    for concurrency, samples in results.items():
        figures = "  ".join(f"{t} {s.client_cpu_seconds / s.calls * 1000:.2f}" for t, s in samples.items())
        print(f"  concurrency {concurrency:>3}: {figures}")


# --- CPU placement --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and any process it starts) on `cpus`; None leaves placement to the scheduler."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure MCP tools/call latency of files_retrieve against echo on `portico serve` (a subprocess on "
            "127.0.0.1), alternating the two in rounds, at each concurrency (one MCP Client session per worker). "
            f"Prints p50/p99/mean, calls/s, server CPU per call, and the files_retrieve/echo ratios "
            f"(goal: within {GOAL_RATIO}x)."
        ),
        epilog="Example: python bench/mcp_latency.py --calls 500 --concurrency 1,4,16",
    )
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per tool per concurrency (2000)")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated numbers of concurrent workers (1,16)")
    parser.add_argument("--round", type=int, default=200, help="calls per round before switching tools (200)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(USABLE_CPUS) >= 2,
        help="server on one CPU, this client on another, so server CPU is one core's (default: on with 2+ CPUs)",
    )
    args = parser.parse_args()
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,16")
    if not args.concurrency or min(args.concurrency) < 1 or args.calls < 1 or args.round < 1:
        parser.error("--calls, --round and every --concurrency must be positive")
    if args.pin and len(USABLE_CPUS) < 2:
        parser.error("--pin needs two usable CPUs")
    return args


def main() -> None:
    args = parse_args()
    server_cpu, client_cpu = USABLE_CPUS[:2] if args.pin else (None, None)
    placement = f"server on CPU {server_cpu}, client on CPU {client_cpu}" if args.pin else "unpinned"
    usable = f"{len(USABLE_CPUS)} usable here"
    print(f"machine: {os.cpu_count()} CPUs ({usable}), load average {os.getloadavg()[0]:.2f}; {placement}")
    with tempfile.TemporaryDirectory(prefix="portico-bench-mcp-") as temp, contextlib.ExitStack() as stack:
        with cpu_affinity({server_cpu} if server_cpu is not None else None):
            url, pid = stack.enter_context(portico_serve(Path(temp), {"PORTICO_LOG_LEVEL": "WARNING"}))
        stack.enter_context(cpu_affinity({client_cpu} if client_cpu is not None else None))
        key, file_id = create_key_and_file(url)
        results = {}
        for concurrency in args.concurrency:
            print(f"measuring concurrency {concurrency} ...", flush=True)
            results[concurrency] = asyncio.run(
                measure_concurrency(f"{url}/mcp", key, file_id, pid, concurrency, args.calls, args.round)
            )
    print()
    print_results(results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the context managers above have stopped the server and removed the temp dir
        print("interrupted", file=sys.stderr)
        sys.exit(130)
