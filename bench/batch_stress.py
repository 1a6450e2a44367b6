"""Managed batches under crashes, repeated: the scenario of tests/test_batches_crash.py run N times in a row.

Each run starts a fresh Portico (API in this process, SQLite, local blobs, its own Redis logical database) with two
`portico worker` subprocesses, uploads a batch of `--lines` chat lines, and routes it through a loadbalance config
over two OpenAI simulators at 20 ms (one injecting 1% 429s, the other 1% 500s), while a random worker is SIGKILLed
at random moments `--kills` times and restarted at once.

    python bench/batch_stress.py [--runs 20] [--lines 10000] [--kills 10] [--concurrency 8]

Per run it prints the duration, the kills, the requests the simulators saw, the injected failures, the re-sends
(requests a crash-free run would not have made, counted from the simulators' per-line counters: see
`tests.support.batches.CrashRun`) against the bound `concurrency x kills`, lines/s, and whether the batch completed
exactly (one result line per input custom_id, request counts equal to the files' lines). Then a summary. It prints
figures and asserts nothing; the exit status is 1 if any run was not exact.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

if not __package__:  # run as `python bench/batch_stress.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from portico.settings import BatchSettings, Settings
from tests.support.batches import CrashRun, crash_scenario
from tests.support.redis import redis_server


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per worker process")
    parser.add_argument("--chunk-lines", type=int, default=100)
    parser.add_argument("--lease-seconds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="run i uses seed + i (kill moments, failure draws)")
    return parser.parse_args()


def exact(run: CrashRun) -> bool:
    return (
        run.status == "completed"
        and len(run.result_ids) == run.lines
        and set(run.result_ids) == set(run.input_ids)
        and (run.completed, run.failed) == (run.output_lines, run.error_lines)
    )


def settings_for(redis_url: str, number: int, work: Path, args: argparse.Namespace) -> Settings:
    database = f"{redis_url.rsplit('/', 1)[0]}/{number % 15 + 1}"
    client = redis.Redis.from_url(database)
    client.flushdb()
    client.close()
    batch = BatchSettings(
        chunk_lines=args.chunk_lines,
        concurrency=args.concurrency,
        max_attempts=6,
        reconcile_seconds=1,
        lease_seconds=args.lease_seconds,
    )
    data_dir = work / f"run{number}"
    return Settings(data_dir=data_dir, redis_url=database, custom_host_allowlist=["127.0.0.1"], batch=batch)


def report(number: int, run: CrashRun, bound: int) -> None:
    print(
        f"run {number:2d}: {run.status:9s} {run.seconds:6.1f} s  kills {run.kills:2d}  requests {run.requests:6d}  "
        f"injected {run.injected:4d} ({run.final_injected} final)  re-sends {run.re_sends:4d} / {bound}  "
        f"{run.lines_per_second:6.0f} lines/s  {'exact' if exact(run) else 'NOT EXACT'}",
        flush=True,
    )


def summary(runs: list[CrashRun], failures: int, bound: int) -> None:
    if not runs:
        print(f"no run finished ({failures} failed)")
        return
    durations = [run.seconds for run in runs]
    re_sends = [run.re_sends for run in runs]
    print(
        f"\n{len(runs)} runs finished, {failures} failed to finish; exact: {sum(map(exact, runs))}/{len(runs)}\n"
        f"duration s   min {min(durations):.1f}  median {statistics.median(durations):.1f}  max {max(durations):.1f}\n"
        f"re-sends     min {min(re_sends)}  median {statistics.median(re_sends):.0f}  max {max(re_sends)}  "
        f"(bound per run {bound}; per kill: {sum(re_sends) / max(1, sum(r.kills for r in runs)):.2f})\n"
        f"lines/s      median {statistics.median(r.lines_per_second for r in runs):.0f}\n"
        f"kills        {sum(r.kills for r in runs)} in total"
    )


def main() -> int:
    args = parse_args()
    # The in-process API and the clients log every request at INFO; only the figures matter here.
    for noisy in ("httpx", "mcp", "uvicorn", "portico", "arq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    bound = args.concurrency * args.kills
    runs: list[CrashRun] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="portico-stress-") as work, redis_server() as redis_url:
        for number in range(args.runs):
            settings = settings_for(redis_url, number, Path(work), args)
            logs = Path(work) / f"logs{number}"
            logs.mkdir()
            try:
                run = crash_scenario(settings, logs, lines=args.lines, kills=args.kills, seed=args.seed + number)
            except (AssertionError, RuntimeError) as error:
                failures += 1
                print(f"run {number:2d}: did not finish: {str(error)[:300]}", flush=True)
                continue
            runs.append(run)
            report(number, run, bound)
    summary(runs, failures, bound)
    return 0 if not failures and all(exact(run) for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
