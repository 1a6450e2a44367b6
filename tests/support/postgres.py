"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests.

`postgres_server()` runs `initdb` in a temporary directory, starts the server with `pg_ctl` on a free loopback port
(its unix socket also in the temporary directory, fsync off), creates the `portico_test` database and yields an async
SQLAlchemy URL. On exit it stops the server and deletes the directory.

initdb refuses to run as root, so as root the cluster belongs to a `portico-pg` system user (created on first use).
The PostgreSQL binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<major>/bin`); `.ci/run`
installs it when it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PG_USER = "portico-pg"
SUPERUSER = "postgres"
DATABASE = "portico_test"


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine, or the cluster would not start."""


def find_bindir() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`: newest /usr/lib/postgresql/*/bin, else PATH."""

    def major(bindir: str) -> int:
        try:
            return int(Path(bindir).parent.name.split(".")[0])
        except ValueError:
            return 0

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if all(os.access(os.path.join(bindir, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return Path(bindir)
    for initdb in (shutil.which("initdb"), "/usr/local/bin/initdb"):
        if initdb and os.access(initdb, os.X_OK):
            bindir_path = Path(initdb).resolve().parent  # /usr/local/bin/initdb is often a symlink into the real dir
            if (bindir_path / "pg_ctl").exists() and (bindir_path / "postgres").exists():
                return bindir_path
    return None


def postgres_available() -> bool:
    return find_bindir() is not None


@dataclass(frozen=True)
class _Owner:
    uid: int
    gid: int


def _owner() -> _Owner | None:
    """The user the cluster runs as when we are root (initdb refuses root); None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                PG_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # exit code 9 (already exists) means a concurrent test run created it first
            entry = pwd.getpwnam(PG_USER)
        except KeyError:
            raise PostgresUnavailableError(f"could not create user {PG_USER!r}: {result.stderr.strip()}") from None
    return _Owner(entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Cluster:
    def __init__(self, bindir: Path, root: Path, owner: _Owner | None) -> None:
        self.bindir = bindir
        self.root = root
        self.owner = owner
        self.data = root / "data"
        self.socket_dir = root / "sock"
        self.log = root / "postgres.log"
        self.port = 0

    def run(self, *argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bindir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        return subprocess.run(
            [str(self.bindir / argv[0]), *argv[1:]],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=self.owner.uid if self.owner is not None else None,
            group=self.owner.gid if self.owner is not None else None,
            extra_groups=[] if self.owner is not None else None,
        )

    def initdb(self) -> None:
        self.socket_dir.mkdir()
        if self.owner is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self.owner.uid, self.owner.gid)
        result = self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if result.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# portico test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        last = ""
        for _ in range(3):  # the free port can be taken before the server binds it: retry with another one
            self.port = _free_port()
            result = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", f"-p {self.port}", "start"
            )
            if result.returncode == 0:
                return
            last = f"{result.stdout}\n{result.stderr}\n{self._log_tail()}"
            self.stop()
        raise PostgresUnavailableError(f"pg_ctl start failed:\n{last}")

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            if self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop").returncode == 0:
                return
        self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def create_database(self, name: str) -> None:
        async def create() -> None:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        # A private loop in a private thread: callers may already be inside a running event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, create()).result(timeout=60)


def _temp_root(owner: _Owner | None) -> Path:
    # The cluster's user must be able to reach its directory: as root, avoid a TMPDIR inside /root.
    base = "/tmp" if owner is not None and os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="portico-pg-", dir=base))


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway cluster; yield `postgresql+asyncpg://postgres@127.0.0.1:PORT/portico_test`."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailableError(
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; "
            "install Debian's 'postgresql' package (.ci/run does this)"
        )
    owner = _owner()
    cluster = _Cluster(bindir, _temp_root(owner), owner)
    try:
        cluster.initdb()
        cluster.start()
        cluster.create_database(DATABASE)
        yield f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{cluster.port}/{DATABASE}"
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.root, ignore_errors=True)
