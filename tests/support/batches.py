"""Helpers for managed-batch tests: input files, waiting for a batch through the `openai` SDK, reading its result
files, and `portico worker` subprocesses that share a Portico's settings (and can be SIGKILLed)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from openai.types import Batch

from portico.settings import Settings
from providers.simulators.app import running_simulator
from tests.support.server import run_portico

CHAT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
ROOT = Path(__file__).resolve().parents[2]
WORKER_READY = "worker ready on queue"


def chat_line(custom_id: str, model: str, text: str, role: str = "user") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": role, "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def jsonl(lines: list[dict[str, Any]], *, blank_every: int = 0) -> bytes:
    """The lines as JSONL; with `blank_every`, a blank line after every that many (blank lines are not records)."""
    out = []
    for number, line in enumerate(lines, start=1):
        out.append(json.dumps(line) + "\n")
        if blank_every and number % blank_every == 0:
            out.append("  \n")
    return "".join(out).encode()


def wait_for(client: openai.OpenAI, batch_id: str, statuses: set[str] = TERMINAL, timeout: float = 120) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout} s: {batch}")
        time.sleep(0.2)


def result_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sim_stats(simulator: str) -> dict[str, Any]:
    return dict(httpx.get(f"{simulator}/_sim/stats").json())


def requests_of(simulator: str, batch_id: str) -> dict[str, int]:
    """custom_id → how many upstream requests carried `X-Client-Request-Id: <batch_id>:<custom_id>`."""
    prefix = f"{batch_id}:"
    counted = sim_stats(simulator)["by_request_id"]
    return {key.removeprefix(prefix): count for key, count in counted.items() if key.startswith(prefix)}


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a `portico` subprocess the same settings (PORTICO_*, nested with `__`)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTICO_")}
    dumped = settings.model_dump(mode="json", exclude_none=True)
    for name, value in dumped.items():
        if name in ("blob", "batch"):
            for inner, inner_value in value.items():
                env[f"PORTICO_{name.upper()}__{inner.upper()}"] = str(inner_value)
        elif isinstance(value, list | dict):
            env[f"PORTICO_{name.upper()}"] = json.dumps(value)
        else:
            env[f"PORTICO_{name.upper()}"] = str(value)
    for secret in ("admin_api_key", "secret_key", "api_key"):
        value = getattr(settings, secret)
        if value is not None:
            env[f"PORTICO_{secret.upper()}"] = value.get_secret_value()
    env["PYTHONPATH"] = str(ROOT)
    return env


class WorkerProcess:
    """`python -m portico.cli worker` with a Portico's settings; `ready` is set once it polls the queue."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self.ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portico.cli", "worker"],
            cwd=ROOT,
            env=settings_env(self.settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        with self.log_path.open("a") as log:
            for line in process.stderr:
                log.write(line)
                if WORKER_READY in line and process is self.process:
                    self.ready.set()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, leases and arq's in-progress keys are left behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class CrashRun:
    """One crash scenario's figures. `re_sends` is the honest count of requests a crash-free run would not have made:
    every request beyond the one each line needs, less one per injected failure that was followed by a retry (an
    injected failure is retried unless it was the line's last attempt, in which case the line ended in the error
    file with that status). A request in flight when its worker died is counted whether the dead worker saw it
    succeed or fail: if it failed, the retry it forces is the one it would have forced anyway."""

    lines: int
    kills: int
    seconds: float
    status: str
    input_ids: list[str]
    result_ids: list[str]
    completed: int
    failed: int
    output_lines: int
    error_lines: int
    requests: int
    injected: int
    final_injected: int

    @property
    def re_sends(self) -> int:
        return self.requests - (self.lines + self.injected - self.final_injected)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds


INJECTED_STATUSES = (429, 500)


def crash_config(portico_api: str, admin_key: str, sims: list[str]) -> str:
    """An inline config spreading lines over the simulators (one injects 429s, the other 500s)."""
    slugs = []
    for number, simulator in enumerate(sims):
        body = {"name": f"crash{number}", "provider": "openai", "key": "sk", "customHost": f"{simulator}/v1"}
        created = httpx.post(f"{portico_api}/virtual-keys", json=body, headers={"x-portkey-api-key": admin_key})
        created.raise_for_status()
        slugs.append(created.json()["data"]["slug"])
    return json.dumps({"strategy": {"mode": "loadbalance"}, "targets": [{"virtual_key": s} for s in slugs]})


def kill_at_random(workers: list[WorkerProcess], client: openai.OpenAI, batch_id: str, kills: int, seed: int) -> int:
    """SIGKILL a random running worker at random moments (restarting it at once) until `kills` were done or the
    batch ended; returns how many were done."""
    rng = random.Random(seed)
    done = 0
    while done < kills:
        time.sleep(rng.uniform(0.3, 1.5))
        if client.batches.retrieve(batch_id).status in TERMINAL:
            break
        running = [worker for worker in workers if worker.ready.is_set()]
        if running:
            victim = rng.choice(running)
            victim.kill()
            victim.start()
            done += 1
    return done


def _workers(stack: ExitStack, settings: Settings, log_dir: Path) -> list[WorkerProcess]:
    workers = [WorkerProcess(settings, log_dir / f"worker{n}.log") for n in range(2)]
    stack.callback(lambda: [worker.stop() for worker in workers])
    for worker in workers:
        worker.start()
    for worker in workers:
        if not worker.ready.wait(60):
            raise RuntimeError(f"a worker did not start; see {worker.log_path}")
    return workers


def _figures(client: openai.OpenAI, batch: Batch, sims: list[str], input_ids: list[str], kills: int) -> CrashRun:
    output, errors = result_lines(client, batch.output_file_id), result_lines(client, batch.error_file_id)
    counts = batch.request_counts
    return CrashRun(
        lines=len(input_ids),
        kills=kills,
        seconds=0.0,
        status=batch.status,
        input_ids=input_ids,
        result_ids=[str(line["custom_id"]) for line in output + errors],
        completed=counts.completed if counts else -1,
        failed=counts.failed if counts else -1,
        output_lines=len(output),
        error_lines=len(errors),
        requests=sum(sum(requests_of(sim, batch.id).values()) for sim in sims),
        injected=sum(int(sim_stats(sim)["injected_failures"]) for sim in sims),
        final_injected=sum(
            1 for line in errors if (line.get("response") or {}).get("status_code") in INJECTED_STATUSES
        ),
    )


def crash_scenario(
    settings: Settings, log_dir: Path, *, lines: int = 10_000, kills: int = 10, seed: int = 0
) -> CrashRun:
    """A managed batch of `lines` lines on two `portico worker` processes, against two simulators at 20 ms with 1%
    injected failures (429 on one, 500 on the other), while workers are SIGKILLed `kills` times."""
    with ExitStack() as stack:
        sims = [
            stack.enter_context(running_simulator("openai", latency_ms=20, fail_rate=0.01, fail_status=status, seed=s))
            for s, status in enumerate(INJECTED_STATUSES, start=seed)
        ]
        portico = stack.enter_context(run_portico(settings))
        config = crash_config(portico.api, portico.admin_key, sims)
        client = openai.OpenAI(
            base_url=portico.api, api_key=portico.admin_key, default_headers={"x-portkey-config": config}, max_retries=2
        )
        workers = _workers(stack, settings, log_dir)
        input_ids = [f"line-{n:05d}" for n in range(lines)]
        payload = jsonl([chat_line(custom_id, "gpt-4o-mini", f"crash {custom_id}") for custom_id in input_ids])
        source = client.files.create(file=("crash.jsonl", payload), purpose="batch")
        started = time.monotonic()
        batch = client.batches.create(input_file_id=source.id, endpoint=CHAT, completion_window="immediate")
        done_kills = kill_at_random(workers, client, batch.id, kills, seed)
        done = wait_for(client, batch.id, timeout=300)
        seconds = time.monotonic() - started
        run = _figures(client, done, sims, input_ids, done_kills)
        run.seconds = seconds
        return run
    raise AssertionError("unreachable: ExitStack re-raises")


def logged_requests(settings: Settings, batch_id: str, expected: int) -> list[dict[str, Any]]:
    """The request-log rows of a batch's lines (trace id = the batch id), waiting for the background writer."""
    database = settings.resolved_database_url().split("///", 1)[1]
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(database) as connection:
            connection.row_factory = sqlite3.Row
            rows = [dict(r) for r in connection.execute("SELECT * FROM request_logs WHERE trace_id = ?", (batch_id,))]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def move_deadline(settings: Settings, batch_id: str, expires_at: int) -> None:
    """Set a batch's `expires_at` in the database (SQLite): how a test makes its window close now."""
    database = settings.resolved_database_url().split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE batches SET expires_at = ? WHERE id = ?", (expires_at, batch_id))
