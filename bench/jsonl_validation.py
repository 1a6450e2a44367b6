"""Throughput of the streaming JSONL validator (`files/jsonl.py`) on realistic batch and fine-tune files.

Builds each file in memory, feeds it in 1 MiB chunks (an upload's chunk size) and prints lines/s and MB/s, best of
`--repeat` runs. The `json only` rows parse the same lines with no rules, the floor the validator builds on.

    python bench/jsonl_validation.py [--lines 200000] [--repeat 3]

It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

if not __package__:  # run as `python bench/jsonl_validation.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from files.jsonl import validator_for

CHUNK = 1024 * 1024
WORDS = ["order", "refund", "late", "the", "my", "was", "not", "and", "please", "help", "account", "charged", "twice"]
WORDS += ["délai", "größe", "返品", "thanks", "🙂", "to", "a", "it", "is", "of", "in", "on", "for", "with", "package"]


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def batch_file(lines: int, seed: int = 7) -> bytes:
    """Chat-completion requests like a classification or extraction run: a shared system prompt, varied inputs."""
    rng = random.Random(seed)
    system = {"role": "system", "content": "You label customer messages. " + _text(rng, 30, 30)}
    out = []
    for n in range(lines):
        body = {
            "model": "gpt-4o-mini",
            "messages": [system, {"role": "user", "content": _text(rng, 10, 200)}],
            "max_tokens": 256,
            "temperature": 0,
        }
        request = {"custom_id": f"request-{n:07d}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        out.append(json.dumps(request, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


def fine_tune_file(lines: int, seed: int = 11) -> bytes:
    """Supervised chat examples of one to three turns."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        messages = [{"role": "system", "content": "You are a terse support agent."}]
        for _turn in range(rng.randint(1, 3)):
            messages.append({"role": "user", "content": _text(rng, 5, 80)})
            messages.append({"role": "assistant", "content": _text(rng, 5, 120)})
        out.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


def validate(purpose: str, data: bytes) -> int:
    validator = validator_for(purpose)
    assert validator is not None
    for start in range(0, len(data), CHUNK):
        validator.feed(data[start : start + CHUNK])
    return validator.finish()


def json_only(data: bytes) -> int:
    for line in data.splitlines():
        json.loads(line)
    return data.count(b"\n")


def best_seconds(run: Callable[[], int], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=200_000, help="lines per file (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest is reported (default 3)")
    args = parser.parse_args()

    samples = {"batch": batch_file(args.lines), "fine-tune": fine_tune_file(args.lines)}
    print(f"{'rules':<22}{'lines':>10}{'MB':>9}{'seconds':>10}{'lines/s':>12}{'MB/s':>9}")
    for purpose, data in samples.items():
        rows = {purpose: partial(validate, purpose, data), f"{purpose} (json only)": partial(json_only, data)}
        for label, run in rows.items():
            seconds = best_seconds(run, args.repeat)
            megabytes = len(data) / 1e6
            print(
                f"{label:<22}{args.lines:>10}{megabytes:>9.1f}{seconds:>10.2f}"
                f"{args.lines / seconds:>12,.0f}{megabytes / seconds:>9.1f}"
            )


if __name__ == "__main__":
    main()
