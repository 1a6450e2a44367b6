"""The `portico` command as a user runs it: `up` on a fresh data directory, a restart, `ops`, `mcp-stdio`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.support.server import free_port

PORTICO = [sys.executable, "-m", "portico.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    return {**env, **extra}


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.log = data_dir.parent / f"up-{self.port}.log"
        self.process = subprocess.Popen(
            [*PORTICO, "up", "--port", str(self.port), "--data-dir", str(data_dir)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                response = httpx.get(f"{self.url}/health", timeout=2)
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"portico up never became healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sent: signal.Signals = signal.SIGINT) -> None:
        self.process.send_signal(sent)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_up_on_a_fresh_data_dir_then_restart(data_dir: Path) -> None:
    first = Up(data_dir)
    try:
        health = first.wait_healthy()
        assert health["checks"] == {"database": "ok", "queue": "ok", "blob_store": "ok"}
        printed = first.output()
        match = re.search(r"Admin API key\s*:\s*(pk-\w+)", printed)
        assert match, printed
        key = match.group(1)
        assert f"{first.url}/mcp" in printed and f"{first.url}/v1" in printed and '"mcpServers"' in printed
        upload = httpx.post(
            f"{first.url}/v1/files",
            headers={"authorization": f"Bearer {key}"},
            data={"purpose": "assistants"},
            files={"file": ("kept.txt", b"survives a restart")},
        )
        assert upload.status_code == 200, upload.text
    finally:
        first.stop()
    assert first.process.returncode == 0, first.output()

    second = Up(data_dir)
    try:
        second.wait_healthy()
        assert "shown once" not in second.output(), "a key is generated only on a new data directory"
        listed = httpx.get(f"{second.url}/v1/files", headers={"authorization": f"Bearer {key}"})
        assert [f["filename"] for f in listed.json()["data"]] == ["kept.txt"]
    finally:
        second.stop()


def test_sigterm_stops_up_and_its_embedded_redis(data_dir: Path) -> None:
    up = Up(data_dir)
    try:
        up.wait_healthy()
        pid_file = data_dir / "redis" / "valkey.pid"
        redis_pid = int(pid_file.read_text().strip())
    finally:
        up.stop(signal.SIGTERM)
    assert up.process.returncode == 0, up.output()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{redis_pid}").exists() and "zombie" not in _state(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{redis_pid}").exists() or "zombie" in _state(redis_pid), "valkey outlived portico up"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "gone"


def test_ops_reports_coverage_by_tag() -> None:
    result = subprocess.run([*PORTICO, "ops", "--json"], capture_output=True, text=True, check=True, env=clean_env())
    table = {row["tag"]: row for row in json.loads(result.stdout)}
    assert len(table["Files"]["implemented"]) == 5 and table["Files"]["missing"] == []
    assert len(table["Batch"]["implemented"]) == 5 and table["Batch"]["missing"] == []
    assert len(table["Fine-tuning"]["implemented"]) == 5 and table["Fine-tuning"]["missing"] == []
    assert table["Finetune"]["implemented"] == ["POST /fine_tuning/jobs"] and table["Finetune"]["missing"] == []
    text = subprocess.run([*PORTICO, "ops"], capture_output=True, text=True, check=True, env=clean_env()).stdout
    assert re.search(r"\d+ of 224 operations implemented", text)


def test_help_describes_every_command() -> None:
    text = subprocess.run([*PORTICO, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("up", "serve", "worker", "mcp-stdio", "migrate", "ops"):
        assert command in text
    up_help = subprocess.run([*PORTICO, "up", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--port" in up_help and "--data-dir" in up_help and "--host" in up_help


def test_mcp_stdio_refuses_to_start_without_a_key(data_dir: Path) -> None:
    result = subprocess.run(
        [*PORTICO, "mcp-stdio", "--data-dir", str(data_dir)], capture_output=True, text=True, env=clean_env()
    )
    assert result.returncode != 0 and "PORTICO_API_KEY" in result.stderr


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_over_stdio(data_dir: Path, mode: str) -> None:
    key = "pk-stdio-test-key-0123456789abcdefghijklmnop"
    env = clean_env(PORTICO_ADMIN_API_KEY=key, PORTICO_API_KEY=key, PORTICO_LOG_LEVEL="WARNING")
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "portico.cli", "mcp-stdio", "--data-dir", str(data_dir)], env=env
    )
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"files_create_from_text", "files_list", "echo"} <= names
        created = await client.call_tool(
            "files_create_from_text", {"filename": "notes.txt", "purpose": "assistants", "text": "over stdio"}
        )
        assert not created.is_error, created
        file_id = created.structured_content["id"]  # type: ignore[index]
        content = await client.read_resource(f"portico://files/{file_id}/content")
        assert content.contents[0].text == "over stdio"  # type: ignore[union-attr]
