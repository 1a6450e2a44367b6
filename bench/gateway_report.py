"""What bench/gateway.py prints after the runs: the table, the added latency over direct, and the goal checks."""

from __future__ import annotations

import statistics

from bench.gateway_load import Load, Ttfb
from bench.gateway_targets import Target
from bench.gateway_upstream import SLOW_SECONDS

GOAL_ADDED_P50_MS = 1.0
GOAL_ADDED_P99_MS = 5.0
GOAL_SLOW_RATIO = 0.95


# --- the table ------------------------------------------------------------------------------------------------


def print_table(targets: list[Target], loads: dict[tuple[str, str, int], Load], ttfb: dict[str, Ttfb]) -> None:
    header = (
        "target",
        "upstream",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "gw CPU ms/req",
        "other load gw/load",
        "errors",
    )
    rows = []
    for (name, mode, concurrency), load in loads.items():
        cpu = f"{load.cpu_ms_per_request:.3f}" if load.cpu_ms_per_request is not None else "-"
        upstream_label = "0 ms" if mode == "fast" else f"{SLOW_SECONDS * 1000:.0f} ms"
        rows.append(
            (
                name,
                upstream_label,
                str(concurrency),
                f"{load.rps:,.0f}",
                f"{load.p50_ms:.3f}",
                f"{load.p99_ms:.3f}",
                f"{load.mean_ms:.3f}",
                cpu,
                f"{percent(load.foreign_load)}/{percent(load.foreign_load_core)}",
                str(load.errors),
            )
        )
    for name, result in ttfb.items():
        rows.append(
            (
                name,
                "SSE",
                "1",
                f"{len(result.first_ms) / max(1e-9, sum(result.total_ms) / 1000):,.0f}",
                f"{result.pct(result.first_ms, 0.5):.3f}",
                f"{result.pct(result.first_ms, 0.99):.3f}",
                f"{statistics.fmean(result.first_ms):.3f}" if result.first_ms else "nan",
                "-",
                "-",
                str(result.errors),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for index, row in enumerate([header, *rows]):
        print(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(
        "gw CPU: the gateway's CPU time per request (all its processes and threads). other load gw/load: CPU time "
        "that processes\nnot under test took on the gateway's core / on the load core (wrk, nginx) during the row, "
        "as a share of the core:\na busy machine shows here. SSE rows: time to the first SSE event, ms; req/s "
        "there is sequential."
    )


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def best_capacity(loads: dict[tuple[str, str, int], Load], name: str) -> float | None:
    """A gateway's requests/s per core: its best with the 0 ms upstream at concurrency > 1 (it is pinned to one)."""
    figures = [load.rps for (n, mode, c), load in loads.items() if n == name and mode == "fast" and c > 1]
    return max(figures) if figures else None


def cpu_capacity(loads: dict[tuple[str, str, int], Load], name: str) -> float | None:
    """Requests/s one core could serve from the gateway's CPU time per request (best over the 0 ms runs)."""
    figures = [
        1000 / load.cpu_ms_per_request
        for (n, mode, c), load in loads.items()
        if n == name and mode == "fast" and c > 1 and load.cpu_ms_per_request
    ]
    return max(figures) if figures else None


def print_added_latency(targets: list[Target], loads: dict[tuple[str, str, int], Load]) -> None:
    direct = loads.get(("direct", "fast", 1))
    if direct is None:
        return
    print("\nAdded latency over direct at concurrency 1 (0 ms upstream):")
    for target in targets:
        load = loads.get((target.name, "fast", 1))
        if target.name == "direct" or load is None:
            continue
        print(
            f"  {target.name:13} p50 +{load.p50_ms - direct.p50_ms:.3f} ms   p99 +{load.p99_ms - direct.p99_ms:.3f} ms"
            f"   (gateway CPU {load.cpu_ms_per_request or 0:.3f} ms/request)"
        )


def print_ttfb_overhead(ttfb: dict[str, Ttfb]) -> None:
    direct = ttfb.get("direct")
    if direct is None or not direct.first_ms:
        return
    print("\nStreaming: time to the first SSE event at concurrency 1, over direct:")
    for name, result in ttfb.items():
        if name == "direct" or not result.first_ms:
            continue
        p50 = result.pct(result.first_ms, 0.5) - direct.pct(direct.first_ms, 0.5)
        p99 = result.pct(result.first_ms, 0.99) - direct.pct(direct.first_ms, 0.99)
        print(f"  {name:13} p50 +{p50:.3f} ms   p99 +{p99:.3f} ms   ({len(result.first_ms)} streams)")


# --- the goals ------------------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("MET " if ok else "MISSED")


def print_goals(loads: dict[tuple[str, str, int], Load], slow_concurrency: list[int]) -> None:
    variants = [name for name in ("portico", "portico-h11") if any(key[0] == name for key in loads)]
    for name in variants:
        note = "" if name == "portico" else " (h11 + asyncio; informational)"
        print(f"\nGoals ({name}{note}):")
        print_latency_goals(loads, name)
        print_capacity_goals(loads, name)
        print_slow_goals(loads, name, slow_concurrency)


def print_latency_goals(loads: dict[tuple[str, str, int], Load], name: str) -> None:
    direct, ours = loads.get(("direct", "fast", 1)), loads.get((name, "fast", 1))
    if direct is None or ours is None:
        print(f"  [n/a ] added latency: needs direct and {name} at concurrency 1")
        return
    p50, p99 = ours.p50_ms - direct.p50_ms, ours.p99_ms - direct.p99_ms
    print(f"  [{verdict(p50 <= GOAL_ADDED_P50_MS)}] added latency at c=1, p50 {p50:.3f} ms <= {GOAL_ADDED_P50_MS} ms")
    print(f"  [{verdict(p99 <= GOAL_ADDED_P99_MS)}] added latency at c=1, p99 {p99:.3f} ms <= {GOAL_ADDED_P99_MS} ms")


def print_capacity_goals(loads: dict[tuple[str, str, int], Load], name: str) -> None:
    ours = best_capacity(loads, name)
    for peer in ("litellm", "portkey"):
        theirs = best_capacity(loads, peer)
        ok = None if ours is None or theirs is None else ours > theirs
        figures = f"{ours or 0:,.0f} vs {theirs or 0:,.0f} req/s" if ok is not None else "not measured"
        by_cpu = cpu_capacity(loads, name), cpu_capacity(loads, peer)
        cpu_note = f"; from CPU time per request {by_cpu[0]:,.0f} vs {by_cpu[1]:,.0f}" if all(by_cpu) else ""
        print(f"  [{verdict(ok)}] more requests/s per core than {peer}: {figures}{cpu_note}")


def print_slow_rounds(rounds: dict[tuple[str, int], list[float]]) -> None:
    for (name, concurrency), ratios in rounds.items():
        each = ", ".join(f"{ratio:.1%}" for ratio in ratios)
        median = statistics.median(ratios)
        print(
            f"\n{name}, 50 ms upstream at c={concurrency}, {len(ratios)} rounds (each against direct measured just "
            f"before it): {each}\n  [{verdict(median >= GOAL_SLOW_RATIO)}] median {median:.1%} >= {GOAL_SLOW_RATIO:.0%}"
        )


def print_slow_goals(loads: dict[tuple[str, str, int], Load], name: str, slow_concurrency: list[int]) -> None:
    for concurrency in slow_concurrency:
        direct, ours = loads.get(("direct", "slow", concurrency)), loads.get((name, "slow", concurrency))
        if direct is None or ours is None:
            continue
        ratio = ours.rps / direct.rps
        print(
            f"  [{verdict(ratio >= GOAL_SLOW_RATIO)}] 50 ms upstream at c={concurrency}: {ratio:.1%} of direct "
            f"({ours.rps:,.0f} vs {direct.rps:,.0f} req/s) >= {GOAL_SLOW_RATIO:.0%}"
        )
