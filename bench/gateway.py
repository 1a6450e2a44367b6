"""Gateway overhead, side by side in one run against one fast upstream: direct, Portico, LiteLLM's proxy, Portkey's.

Non-streaming chat completions (~1 KB request, ~1 KB response) go to the same upstream four ways:

- direct: the load generator talks to the upstream itself (the floor every gateway adds to);
- portico: `portico serve` (a subprocess, SQLite in a temp data dir, PORTICO_PROVIDER_ENDPOINTS naming the upstream,
  `--no-access-log`, PORTICO_LOG_LEVEL=WARNING), routed by openai virtual keys created through REST first;
- litellm: LiteLLM's proxy (`litellm[proxy]` 1.108.7 in its own venv under bench/.peers/), one model per upstream
  mode, a strong master key, no database, no callbacks, num_retries 0;
- portkey: Portkey's open-source gateway (npm `@portkey-ai/gateway`), forced onto 127.0.0.1 by a `node --require`
  preload (by itself it binds every interface), warmed up ~5 s before it is measured; `x-portkey-provider: openai`
  and `x-portkey-custom-host` name the upstream.

`portico` runs as shipped (httptools and uvloop are dependencies). Optional: `portico-h11`, the same Portico on
the pure-Python stack (`--http h11 --loop asyncio`), to show what those two bring.

The upstream is Debian nginx, a non-daemon child with its config, pid file and error log in a temp dir. One port
answers POST /v1/chat/completions with a fixed chat.completion (`return 200`); the bearer key picks the variant
(`map $http_authorization`), so every gateway and the direct client reach the same server the same way:
`sk-bench-fast` answers at once, `sk-bench-slow` after 50 ms (`echo_sleep 0.05` from libnginx-mod-http-echo; if
that module does not load, nginx proxies those requests to a tiny aiohttp server that sleeps 50 ms instead), and
`sk-bench-stream` answers an SSE stream (`text/event-stream`, fixed body).

Load: wrk (Debian `wrk`, one thread, N connections = N requests in flight, a Lua script for the POST body and
headers; latencies are wrk's, in microseconds). Placement: every gateway process is pinned to one core, wrk and
nginx to the other (`taskset`), so a gateway's requests/s at high concurrency is its capacity per core. The gateway
CPU time per request (user + system of its whole process tree, from /proc) is printed too: it is the per-core
figure least disturbed by other load on a shared machine.

Measured: concurrency 1, 16, 64 with the 0 ms upstream and 64 with the 50 ms upstream, each after a warm-up at the
same concurrency; at concurrency 1 each gateway's added latency over direct (p50, p99). Streaming: time to the
first SSE event at concurrency 1 (an aiohttp client on the load core), Portico against direct. It prints one table
and the goal checks; it asserts nothing.

    bench/peers.sh                      # once: nginx, echo module, wrk, LiteLLM, Portkey (idempotent)
    python bench/gateway.py             # everything, ~4-5 minutes
    python bench/gateway.py --targets direct,portico --duration 5
    python bench/gateway.py --slow-rounds 5     # the 50 ms rows five times; the goal is judged on the median

Every process it starts is stopped on exit, on error and on Ctrl-C (each runs in its own session and is stopped by
its process group id).

The code: this file (options, the run, profiling), gateway_upstream.py (the fixed request and answers, nginx),
gateway_targets.py (starting, checking and stopping each target), gateway_load.py (wrk, CPU accounting, streaming
time to first event), gateway_report.py (the table and the goals), gateway_processes.py (child processes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python bench/gateway.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway_load import Load, Ttfb, measure_load, measure_ttfb, run_wrk, wrk_script
from bench.gateway_processes import child
from bench.gateway_report import (
    print_added_latency,
    print_goals,
    print_slow_rounds,
    print_table,
    print_ttfb_overhead,
)
from bench.gateway_targets import (
    DEFAULT_TARGETS,
    LITELLM_BIN,
    PEERS,
    PORTKEY_SERVER,
    ROOT,
    TARGETS,
    Target,
    start_targets,
)
from bench.gateway_upstream import upstream

PY_SPY = PEERS / "tools" / "bin" / "py-spy"
USABLE_CPUS = sorted(os.sched_getaffinity(0))


def scenarios(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [("fast", c) for c in args.concurrency] + [("slow", c) for c in args.slow_concurrency]


def machine_notes(args: argparse.Namespace) -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    placement = f"gateways on CPU {args.gateway_cpu}, wrk + nginx on CPU {args.load_cpu}" if args.pin else "unpinned"
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return (
        f"machine: {model}, {os.cpu_count()} CPUs ({len(USABLE_CPUS)} usable), load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {placement}; Python {platform.python_version()}; "
        f"portico {git.stdout.strip() or 'tree'} at {ROOT}"
    )


# --- the run --------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> None:
    print(machine_notes(args), flush=True)
    loads: dict[tuple[str, str, int], Load] = {}
    ttfb: dict[str, Ttfb] = {}
    with contextlib.ExitStack() as stack:
        base, slow_how, args.upstream_pids = stack.enter_context(upstream(work, args.load_cpu))
        print(f"upstream: nginx at {base} (50 ms answers: {slow_how})", flush=True)
        targets = start_targets(args, base, work, stack)
        for target in targets:
            print(f"  {target.name}: {target.version or 'ready'}", flush=True)
        portkey = next((t for t in targets if t.name == "portkey"), None)
        if portkey is not None and args.portkey_warmup > 0:
            print(f"warming Portkey's gateway up for {args.portkey_warmup:.0f} s ...", flush=True)
            run_wrk(wrk_script(work, portkey, "fast"), portkey.url, 16, args.portkey_warmup, args.load_cpu)
        for index, (mode, concurrency) in enumerate(scenarios(args)):
            order = targets[index % len(targets) :] + targets[: index % len(targets)]  # rotate: drift hits all alike
            for target in order:
                print(f"measuring {target.name:12} {mode} upstream, concurrency {concurrency} ...", flush=True)
                loads[(target.name, mode, concurrency)] = measure_load(target, mode, concurrency, args, work)
        rounds = repeat_slow(args, targets, work, loads)
        for target in targets:
            if target.name in args.ttfb_targets:
                print(f"measuring {target.name:12} streaming time to first event ...", flush=True)
                ttfb[target.name] = measure_ttfb(target, args)
        if args.profile:
            profile_portico(targets, args, work)
        # Sort the rows for the table: by scenario, then target, in the order given.
        position = {t.name: i for i, t in enumerate(targets)}
        keyed = sorted(loads.items(), key=lambda item: (item[0][1] != "fast", item[0][2], position[item[0][0]]))
        loads = dict(keyed)
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print_table(targets, loads, {name: ttfb[name] for name in sorted(ttfb, key=lambda n: n != "direct")})
    print_added_latency(targets, loads)
    print_ttfb_overhead(ttfb)
    print_goals(loads, args.slow_concurrency)
    print_slow_rounds(rounds)


def repeat_slow(
    args: argparse.Namespace, targets: list[Target], work: Path, loads: dict[tuple[str, str, int], Load]
) -> dict[tuple[str, int], list[float]]:
    """`--slow-rounds N`: the 50 ms rows N times in all, direct and each Portico back to back, so the goal is judged
    on a median rather than on one draw (on a shared machine one round's ratio moves by several points)."""
    rounds: dict[tuple[str, int], list[float]] = {}
    direct = next((t for t in targets if t.name == "direct"), None)
    ours = [t for t in targets if t.name.startswith("portico")]
    if direct is None or args.slow_rounds < 2:
        return rounds
    for concurrency in args.slow_concurrency:
        for target in ours:
            first = loads[(target.name, "slow", concurrency)].rps / loads[("direct", "slow", concurrency)].rps
            rounds[(target.name, concurrency)] = [first]
        for number in range(2, args.slow_rounds + 1):
            print(f"round {number}/{args.slow_rounds}: 50 ms upstream, concurrency {concurrency} ...", flush=True)
            baseline = measure_load(direct, "slow", concurrency, args, work)
            for target in ours:
                load = measure_load(target, "slow", concurrency, args, work)
                rounds[(target.name, concurrency)].append(load.rps / baseline.rps)
    return rounds


def profile_portico(targets: list[Target], args: argparse.Namespace, work: Path) -> None:
    """After the measured runs: py-spy records each Portico under concurrency-64 load (0 ms upstream, or 50 ms with
    `--profile-upstream slow`).

    `--gil` samples only the thread holding the GIL, i.e. where CPU time goes: without it the idle aiosqlite worker
    threads (blocked inside C calls, which py-spy does not see as idle) fill most samples. Two recorders run at once
    (a flame graph and collapsed stacks for grep), which slows the server: these runs are not figures."""
    for target in targets:
        if not target.name.startswith("portico") or target.pid is None:
            continue
        out = Path(args.profile) / f"{target.name}.svg"
        raw = Path(args.profile) / f"{target.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"profiling {target.name} (py-spy, {args.duration:.0f} s at concurrency 64) ...", flush=True)
        seconds = str(max(1, round(args.duration)))
        spy = [str(PY_SPY), "record", "--pid", str(target.pid), "--duration", seconds, "--rate", "200", "--gil"]
        with contextlib.ExitStack() as stack:
            flame = stack.enter_context(child(f"py-spy-{target.name}", [*spy, "-o", str(out)], work))
            collapsed = stack.enter_context(
                child(f"py-spy-raw-{target.name}", [*spy, "--format", "raw", "-o", str(raw)], work)
            )
            time.sleep(1)
            run_wrk(wrk_script(work, target, args.profile_upstream), target.url, 64, args.duration, args.load_cpu)
            for spy_process in (flame, collapsed):
                spy_process.process.wait(timeout=args.duration + 30)
        print(f"  flame graph {out}, collapsed stacks {raw}")


# --- options --------------------------------------------------------------------------------------------------


def parse_list(value: str, parser: argparse.ArgumentParser, what: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        parser.error(f"{what} takes comma-separated integers")
    if any(n < 1 for n in numbers):
        parser.error(f"{what} must be positive")
    return numbers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure non-streaming chat completions (~1 KB each way) through Portico, LiteLLM's proxy and Portkey's "
            "gateway against direct, side by side in one run against the same nginx upstream, with wrk as the load. "
            "Each gateway is pinned to one core, wrk and nginx to the other. Prints req/s, p50/p99 latency, gateway "
            "CPU per request, the added latency at concurrency 1, streaming time to first event, and the goals. "
            "Install the peers first: bench/peers.sh"
        ),
        epilog="Example: python bench/gateway.py --targets direct,portico,portkey --duration 5",
    )
    parser.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help=f"comma-separated, of: {', '.join(TARGETS)} (default {DEFAULT_TARGETS}; portico-h11 = h11 + asyncio)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measurement (default 2)")
    parser.add_argument("--concurrency", default="1,16,64", help="concurrencies with the 0 ms upstream (1,16,64)")
    parser.add_argument("--slow-concurrency", default="64", help="concurrencies with the 50 ms upstream (64)")
    parser.add_argument("--ttfb-seconds", type=float, default=5.0, help="seconds of streaming per target (default 5)")
    parser.add_argument("--ttfb-targets", default="direct,portico", help="targets whose streaming TTFB is measured")
    parser.add_argument(
        "--portkey-warmup",
        type=float,
        default=15.0,
        help="extra warm-up seconds for Portkey's gateway at start (default 15: here its CPU per request still fell "
        "for ~20 s of load, JIT)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=len(USABLE_CPUS) >= 2,
        help="gateways on one CPU, wrk and nginx on another (default: on with 2+ usable CPUs)",
    )
    parser.add_argument(
        "--portico-args",
        default="",
        type=shlex.split,
        help="extra `portico serve` arguments for portico and portico-h11, e.g. '--no-gc-freeze' (A/B runs)",
    )
    parser.add_argument(
        "--slow-rounds", type=int, default=1, help="measure the 50 ms rows this many times and judge the median (1)"
    )
    parser.add_argument("--profile", metavar="DIR", help="afterwards, py-spy each Portico at c=64 into DIR (svg + raw)")
    parser.add_argument(
        "--profile-upstream", choices=("fast", "slow"), default="fast", help="the upstream while profiling (fast)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs) and print its path")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown or not args.targets:
        parser.error(f"unknown targets {unknown}; choose from {', '.join(TARGETS)}")
    args.ttfb_targets = {t.strip() for t in args.ttfb_targets.split(",") if t.strip()}
    args.concurrency = parse_list(args.concurrency, parser, "--concurrency")
    args.slow_concurrency = parse_list(args.slow_concurrency, parser, "--slow-concurrency")
    if args.duration < 1 or args.warmup < 0 or args.ttfb_seconds <= 0:
        parser.error("--duration must be >= 1 s, --warmup >= 0, --ttfb-seconds > 0")
    if args.pin and len(USABLE_CPUS) < 2:
        parser.error("--pin needs two usable CPUs (use --no-pin)")
    args.gateway_cpu, args.load_cpu = (USABLE_CPUS[0], USABLE_CPUS[1]) if args.pin else (None, None)
    check_prerequisites(parser, args)
    return args


def check_prerequisites(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    tools = ["nginx", "wrk", *(["taskset"] if args.pin else []), *(["node"] if "portkey" in args.targets else [])]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if "litellm" in args.targets and not LITELLM_BIN.exists():
        missing.append("litellm (bench/.peers/litellm-venv)")
    if "portkey" in args.targets and not PORTKEY_SERVER.exists():
        missing.append("@portkey-ai/gateway (bench/.peers/portkey)")
    if args.profile and not PY_SPY.exists():
        missing.append("py-spy (bench/peers.sh tools)")
    if missing:
        parser.error(f"missing {', '.join(missing)}: run bench/peers.sh (see its header)")


def main() -> None:
    args = parse_args()
    # SIGINT (also where a shell started us with it ignored), SIGTERM and SIGHUP end the run like Ctrl-C: the context
    # managers stop every child and remove the temp dir.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _raise_interrupt)
    if args.load_cpu is not None:
        os.sched_setaffinity(0, {args.load_cpu})  # this process (the TTFB client) sits with the load
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(tempfile.mkdtemp(prefix="portico-bench-gateway-"))
            print(f"work dir (kept): {work}")
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portico-bench-gateway-")))
        run(args, work)
    print(f"\n(total run time {time.monotonic() - started:.0f} s)")


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the context managers above have stopped every child and removed the temp dir
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
