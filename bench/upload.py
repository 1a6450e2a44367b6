"""Large-file upload through the official `openai` SDK: throughput both ways, and the server's memory while it streams.

For each blob backend this starts `portico serve` as a subprocess on 127.0.0.1 (SQLite and a fresh data directory;
for `s3`, a moto S3 server too), uploads one file of pseudo-random bytes with `client.files.create`, then streams
the content back and checks its sha256. A thread samples the server process's VmRSS from /proc every 50 ms before
and during the upload; the kernel's own high-water mark (VmHWM, reset just before the upload) is printed beside the
sampled peak as a cross-check.

    python bench/upload.py [--size-mb 1024] [--backends local,s3]

The goal it reports against: the server's RSS grows by at most 64 MiB during an upload of any size (uploads stream
to the blob store; nothing holds a whole file). It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

if not __package__:  # run as `python bench/upload.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import openai

from tests.support.object_stores import LOOPBACK, free_port, moto_s3_server

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BLOCK = 8 * MIB
GOAL_GROWTH_MIB = 64
SAMPLE_SECONDS = 0.05
ADMIN_KEY = "pk-bench-admin-0123456789abcdefghijklmnopqrstuv"
BUCKET = "portico-bench"
REGION = "us-east-1"
STARTUP_TIMEOUT = 60.0
BACKENDS = ("local", "s3")


@dataclass
class Result:
    backend: str
    size_mib: float
    upload_mb_s: float
    download_mb_s: float
    rss_before_mib: float
    rss_peak_mib: float
    hwm_mib: float
    verified: bool

    @property
    def growth_mib(self) -> float:
        return self.rss_peak_mib - self.rss_before_mib


# --- the server's memory --------------------------------------------------------------------------------------


def proc_status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's VmHWM for `pid` (writing 5 to clear_refs); False where that is not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS of one process every `interval` seconds in a daemon thread, keeping the peak."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))


# --- processes ------------------------------------------------------------------------------------------------


def portico_executable() -> Path:
    candidates = [Path(sys.executable).with_name("portico"), ROOT / ".venv" / "bin" / "portico"]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    sys.exit("No `portico` executable beside this Python: run with the project's venv (. .venv/bin/activate).")


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any PORTICO_* setting of the caller's, plus `extra`. The checkout comes
    first on PYTHONPATH, so the server runs this working tree even where the editable install predates a package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.seek(0)
    return log.read()[-limit:].decode(errors="replace")


def _wait_until_answering(process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    """Any HTTP answer from /health will do: without Redis it reports the queue as down (503) and serves anyway."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"portico serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"portico serve did not answer within {STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}")


@contextlib.contextmanager
def portico_serve(data_dir: Path, settings: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`portico serve` on a free loopback port as a subprocess; yields (base URL, pid); stops it on exit."""
    port = free_port()
    command = [str(portico_executable()), "serve", "--host", LOOPBACK, "--port", str(port), "--data-dir", str(data_dir)]
    env = clean_environment({"PORTICO_ADMIN_API_KEY": ADMIN_KEY, **settings})
    with tempfile.TemporaryFile() as log:
        # cwd is the data directory, so a developer's `.env` in the repository is not read.
        process = subprocess.Popen(command, cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            url = f"http://{LOOPBACK}:{port}"
            _wait_until_answering(process, url, log)
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def blob_settings(backend: str, size: int) -> Iterator[dict[str, str]]:
    """PORTICO_* settings for `backend`; for s3 a moto server (and its bucket) lives as long as the block."""
    base = {"PORTICO_UPLOAD_MAX_BYTES": str(size + 64 * MIB), "PORTICO_LOG_LEVEL": "WARNING"}
    if backend == "local":
        yield {**base, "PORTICO_BLOB__BACKEND": "local"}
        return
    if backend != "s3":
        raise ValueError(f"unknown backend {backend!r}")
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    os.environ.update(credentials)  # moto, boto3 here, and the server's boto3 all read them
    with moto_s3_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield {
            **base,
            **credentials,
            "PORTICO_BLOB__BACKEND": "s3",
            "PORTICO_BLOB__BUCKET": BUCKET,
            "PORTICO_BLOB__ENDPOINT_URL": endpoint,
            "PORTICO_BLOB__REGION": REGION,
        }


# --- the measurement ------------------------------------------------------------------------------------------


def write_payload(path: Path, size: int) -> str:
    """`size` pseudo-random bytes (os.urandom, 8 MiB blocks) at `path`; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(BLOCK, remaining))
            digest.update(block)
            out.write(block)
            remaining -= len(block)
    return digest.hexdigest()


def measure(backend: str, payload: Path, expected_sha256: str, work: Path) -> Result:
    size = payload.stat().st_size
    data_dir = work / f"data-{backend}"
    data_dir.mkdir()
    with blob_settings(backend, size) as settings, portico_serve(data_dir, settings) as (url, pid):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=600)
        # One small request first, so connection set-up and lazy imports are not counted as upload memory.
        client.files.list()
        time.sleep(0.5)
        rss_before = proc_status_kib(pid, "VmRSS")
        hwm_reset = reset_peak_rss(pid)
        with RssSampler(pid) as sampler, payload.open("rb") as body:
            started = time.perf_counter()
            created = client.files.create(file=(payload.name, body), purpose="assistants")
            upload_seconds = time.perf_counter() - started
        hwm = proc_status_kib(pid, "VmHWM") if hwm_reset else 0
        digest = hashlib.sha256()
        started = time.perf_counter()
        with client.files.with_streaming_response.content(created.id) as response:
            for chunk in response.iter_bytes(MIB):
                digest.update(chunk)
        download_seconds = time.perf_counter() - started
    return Result(
        backend=backend,
        size_mib=size / MIB,
        upload_mb_s=size / MIB / upload_seconds,
        download_mb_s=size / MIB / download_seconds,
        rss_before_mib=rss_before / 1024,
        rss_peak_mib=sampler.peak_kib / 1024,
        hwm_mib=hwm / 1024,
        verified=digest.hexdigest() == expected_sha256 and created.bytes == size,
    )


def print_table(results: list[Result]) -> None:
    header = ("backend", "size MiB", "up MiB/s", "down MiB/s", "RSS before", "peak RSS", "growth", "VmHWM", "sha256")
    rows = [
        (
            r.backend,
            f"{r.size_mib:.0f}",
            f"{r.upload_mb_s:.1f}",
            f"{r.download_mb_s:.1f}",
            f"{r.rss_before_mib:.1f}",
            f"{r.rss_peak_mib:.1f}",
            f"{r.growth_mib:+.1f}",
            f"{r.hwm_mib:.1f}" if r.hwm_mib else "n/a",
            "ok" if r.verified else "MISMATCH",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nRSS figures are the server process's, in MiB; goal: peak growth <= {GOAL_GROWTH_MIB} MiB.")
    for r in results:
        verdict = "within" if r.growth_mib <= GOAL_GROWTH_MIB else "OVER"
        print(f"  {r.backend}: growth {r.growth_mib:+.1f} MiB, {verdict} the goal")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Upload one large file through the openai SDK to `portico serve` (a subprocess on 127.0.0.1) per blob "
            "backend, download it back to check its sha256, and print upload/download MiB/s and the server "
            f"process's RSS before and during the upload (goal: peak growth <= {GOAL_GROWTH_MIB} MiB)."
        ),
        epilog="Example: python bench/upload.py --size-mb 256 --backends s3",
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the uploaded file in MiB (default 1024)")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated blob backends to measure, of: local, s3 (default local,s3; s3 runs a moto server)",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown or not args.backends:
        parser.error(f"--backends: choose from {', '.join(BACKENDS)} (got {args.backends or 'none'})")
    if args.size_mb <= 0:
        parser.error("--size-mb must be positive")
    return args


def main() -> None:
    args = parse_args()
    usable = len(os.sched_getaffinity(0))
    print(f"machine: {os.cpu_count()} CPUs ({usable} usable here), load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="portico-bench-upload-") as temp:
        work = Path(temp)
        payload = work / "payload.bin"
        print(f"writing {args.size_mb} MiB of pseudo-random bytes ...", flush=True)
        expected = write_payload(payload, args.size_mb * MIB)
        results = []
        for backend in args.backends:
            print(f"measuring {backend} ...", flush=True)
            results.append(measure(backend, payload, expected, work))
    print()
    print_table(results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the context managers above have stopped the servers and removed the temp files
        print("interrupted", file=sys.stderr)
        sys.exit(130)
