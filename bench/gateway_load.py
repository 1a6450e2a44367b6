"""The load of bench/gateway.py and its accounting: wrk with a Lua script (the POST body and headers, one result
line), the CPU time of the gateway, of its core and of the load core around each run, and the streaming time to
the first SSE event (an aiohttp client)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.gateway_processes import pinned, stop_group
from bench.gateway_targets import Target
from bench.gateway_upstream import request_body

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- load: wrk ------------------------------------------------------------------------------------------------

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d %d %d %.1f %d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms_per_request: float | None = None
    # CPU time others (not this gateway) used on the gateway's core while it was measured, as a share of that core.
    foreign_load: float | None = None
    # The same on the load core: CPU time besides wrk's and the upstream's.
    foreign_load_core: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk_script(work: Path, target: Target, mode: str) -> Path:
    headers = {"Content-Type": "application/json", **target.headers[mode]}
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    path = work / f"wrk-{target.name}-{mode}.lua"
    path.write_text(WRK_SCRIPT.format(body=request_body(mode).decode(), headers=lines))
    return path


def run_wrk(script: Path, url: str, concurrency: int, seconds: float, cpu: int | None) -> Load:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script)]
    process = subprocess.Popen(
        pinned([*command, url], cpu), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=seconds + 30)
    finally:
        stop_group(process, grace=2)
    text = output.decode(errors="replace")
    line = next((line for line in text.splitlines() if line.startswith("WRK_RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")
    values = line.split()[1:]
    requests, duration_us = int(values[0]), int(values[1])
    errors = sum(int(v) for v in values[2:7])
    p50, p99, mean = int(values[7]) / 1000, int(values[8]) / 1000, float(values[9]) / 1000
    return Load(requests, duration_us / 1e6, errors, p50, p99, mean)


def measure_load(
    target: Target, mode: str, concurrency: int, args: argparse.Namespace, work: Path, warmup: float | None = None
) -> Load:
    script = wrk_script(work, target, mode)
    warm = args.warmup if warmup is None else warmup
    if warm > 0:
        run_wrk(script, target.url, concurrency, warm, args.load_cpu)
    cpu_before = process_tree_cpu_seconds(target.pid) if target.pid else 0.0
    upstream_before = sum(process_tree_cpu_seconds(pid) for pid in args.upstream_pids)
    cores_before = core_busy_seconds(args.gateway_cpu), core_busy_seconds(args.load_cpu)
    wrk_before = children_cpu_seconds()
    load = run_wrk(script, target.url, concurrency, args.duration, args.load_cpu)
    gateway_cpu = process_tree_cpu_seconds(target.pid) - cpu_before if target.pid else 0.0
    if target.pid and load.requests:
        load.cpu_ms_per_request = gateway_cpu / load.requests * 1000
    if args.gateway_cpu is not None and target.pid:
        foreign = core_busy_seconds(args.gateway_cpu) - cores_before[0] - gateway_cpu
        load.foreign_load = max(0.0, foreign / load.seconds)
    if args.load_cpu is not None:
        ours = children_cpu_seconds() - wrk_before
        ours += sum(process_tree_cpu_seconds(pid) for pid in args.upstream_pids) - upstream_before
        load.foreign_load_core = max(0.0, (core_busy_seconds(args.load_cpu) - cores_before[1] - ours) / load.seconds)
    return load


# --- CPU accounting -------------------------------------------------------------------------------------------


def process_tree_cpu_seconds(root: int) -> float:
    """utime + stime of `root` and every descendant (all threads), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(p for p, parent in parents.items() if parent == pid)
    return total


def children_cpu_seconds() -> float:
    """User + system time of this process's reaped children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def core_busy_seconds(cpu: int | None) -> float:
    """Non-idle time of one CPU so far (user, nice, system, irq, softirq, steal), from /proc/stat."""
    if cpu is None:
        return 0.0
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(value) for value in line.split()[1:9]]
                return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # minus idle and iowait
    return 0.0


# --- streaming: time to the first SSE event -------------------------------------------------------------------


@dataclass
class Ttfb:
    first_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def pct(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def _ttfb(target: Target, seconds: float, warmup: float) -> Ttfb:
    result = Ttfb()
    headers = {"content-type": "application/json", **target.headers["stream"]}
    body = request_body("stream")
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for phase, length in (("warm-up", warmup), ("measure", seconds)):
            deadline = time.perf_counter() + length
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(target.url, data=body, headers=headers) as response:
                    first = await response.content.readuntil(b"\n\n")
                    first_at = time.perf_counter()
                    rest = await response.read()
                ended = time.perf_counter()
                good = response.status == 200 and first.startswith(b"data: {") and b"[DONE]" in first + rest
                if phase == "measure":
                    result.errors += not good
                    result.first_ms.append((first_at - started) * 1000)
                    result.total_ms.append((ended - started) * 1000)
    return result


def measure_ttfb(target: Target, args: argparse.Namespace) -> Ttfb:
    return asyncio.run(_ttfb(target, args.ttfb_seconds, min(args.warmup, 2.0)))
