"""Portico as real processes for crash tests: `python -m portico.cli serve` and `python -m portico.cli worker`, each
in its own process group with a Portico's settings in PORTICO_* variables, so a test can SIGKILL the whole group.

`quiesced_kill` kills them at a moment no fine-tuning step is running: both groups are frozen (SIGSTOP) first, and
killed only if Redis then shows no fine-tuning job in progress at arq and no job lease held; otherwise they are
thawed and the check repeats. A step killed half-way is a different scenario: its lease (`batch.native.lock`,
60 s) and arq's in-progress key (the longest job timeout + 10 s) hold the job up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from portico.settings import Settings
from tests.support.batches import ROOT, WORKER_READY, settings_env
from tests.support.server import RunningPortico, free_port

STARTUP_SECONDS = 60.0


@dataclass
class PorticoProcess:
    """One `portico` subprocess (its own session, so its own process group), logging to `log_path`."""

    arguments: list[str]
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "portico.cli", *self.arguments],
                cwd=ROOT,
                env=settings_env(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, number: signal.Signals) -> None:
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)

    def kill(self) -> None:
        """SIGKILL the process group: no shutdown code runs, leases and arq's keys stay as they were."""
        if self.process is not None:
            self.signal_group(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, *, after: int = 0) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while text not in self.log()[after:]:
            assert self.running, f"portico {self.arguments[0]} exited: see {self.log_path}"
            assert time.monotonic() < deadline, f"portico {self.arguments[0]} did not start: see {self.log_path}"
            time.sleep(0.1)


class PorticoProcesses:
    """An API process (`serve`) and a worker process on one settings (database, Redis, blobs)."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        assert settings.admin_api_key is not None and settings.redis_url
        self.settings = settings
        self.port = free_port()
        self.api = PorticoProcess(["serve", "--port", str(self.port)], settings, log_dir / "api.log")
        self.worker = PorticoProcess(["worker"], settings, log_dir / "worker.log")
        self.portico = RunningPortico(
            url=f"http://127.0.0.1:{self.port}", admin_key=settings.admin_api_key.get_secret_value(), settings=settings
        )

    def start(self) -> RunningPortico:
        """Start the API (which migrates the database), then the worker; return once both serve."""
        self.api.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self.api.running, f"the API exited: see {self.api.log_path}"
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.portico.url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the API did not start: see {self.api.log_path}"
            time.sleep(0.1)
        logged = len(self.worker.log())
        self.worker.start()
        self.worker.wait_for_log(WORKER_READY, after=logged)
        return self.portico

    def stop(self) -> None:
        self.worker.stop()
        self.api.stop()

    def quiesced_kill(self, *, attempts: int = 200) -> None:
        """SIGKILL both process groups at a moment no fine-tuning step is running (see the module docstring)."""
        client = redis.Redis.from_url(self.settings.redis_url or "")
        try:
            for _ in range(attempts):
                for process in (self.worker, self.api):
                    process.signal_group(signal.SIGSTOP)
                busy = client.keys("arq:in-progress:ftjob:*") + client.keys("portico:lock:batch:ftjob-*")
                if not busy:
                    self.worker.kill()
                    self.api.kill()
                    return
                for process in (self.worker, self.api):
                    process.signal_group(signal.SIGCONT)
                time.sleep(0.05)
        finally:
            client.close()
        raise AssertionError("a fine-tuning step was always running; nothing was killed")
