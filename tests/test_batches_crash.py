"""A managed batch survives workers killed at random (DESIGN.md §4: a killed worker costs at most the requests in
flight; output has exactly one line per custom_id).

10,000 lines on two `portico worker` processes, through a loadbalance config over two simulators at 20 ms, one
injecting 1% 429s and the other 1% 500s; a random worker is SIGKILLed at random moments 10 times and restarted at
once. The batch must complete with one result line per input custom_id, request counts equal to the files' lines,
and at most `concurrency * kills` re-sent requests.

Re-sends are counted from the simulators' own counters (`by_request_id`, keyed by the `X-Client-Request-Id` every
line carries), not from anything Portico reports: every request beyond the one each line needs, less one per
injected failure that was retried (all of them, except a failure that was a line's last attempt and so ended in the
error file). What is left is exactly the requests a crash-free run would not have made. See
`tests.support.batches.CrashRun`; `bench/batch_stress.py` repeats this scenario and reports the same figures.

Settings for CI speed: chunks of 100 lines, a 5 s lease (a dead runner's chunk resumes after at most that, plus a
1 s reconcile tick), and 8 requests in flight per worker, so the batch outlasts ten kills.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import redis

from portico.settings import BatchSettings
from tests.conftest import STACKS, stack_settings
from tests.support.batches import crash_scenario

LINES = 10_000
KILLS = 10
CONCURRENCY = 8
BATCH = BatchSettings(chunk_lines=100, concurrency=CONCURRENCY, max_attempts=6, reconcile_seconds=1, lease_seconds=5)


def test_a_batch_completes_exactly_while_workers_are_killed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    seed = random.randrange(1_000_000)
    settings = stack_settings(
        request,
        STACKS["sqlite-local"],
        tmp_path_factory.mktemp("crash"),
        custom_host_allowlist=["127.0.0.1"],
        batch=BATCH,
    )
    run = crash_scenario(settings, tmp_path, lines=LINES, kills=KILLS, seed=seed)
    figures = (
        f"seed {seed}: {run.status} in {run.seconds:.1f} s, {run.kills} kills, {run.requests} requests, "
        f"{run.injected} injected failures ({run.final_injected} final), {run.re_sends} re-sends; "
        f"worker logs in {tmp_path}"
    )
    print(figures)

    assert run.kills == KILLS, f"the batch ended before {KILLS} kills: {figures}"
    assert run.status == "completed", figures
    assert len(run.result_ids) == LINES, f"output + error lines = {LINES}: {figures}"
    assert len(set(run.result_ids)) == LINES and set(run.result_ids) == set(run.input_ids), figures
    assert (run.completed, run.failed) == (run.output_lines, run.error_lines), f"counts are the files' lines: {figures}"
    assert 0 <= run.re_sends <= CONCURRENCY * KILLS, figures
    leftovers = redis.Redis.from_url(settings.redis_url).keys("portico:batch:*")
    assert [key.decode() for key in leftovers if not key.endswith(b":final")] == [], "no working state is left"
