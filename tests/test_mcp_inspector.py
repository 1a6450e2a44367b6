"""`/mcp` driven by the MCP Inspector CLI (npm `@modelcontextprotocol/inspector` 0.15.0), a client nobody here wrote.

`.ci/run` installs it under `.ci/node` and exports `PORTICO_INSPECTOR_BIN`. Without it the tests skip, except under
CI (`CI` set), where they fail. The 0.15 CLI has no option for request headers: its streamable-HTTP transport is
built from the URL alone and calls the global `fetch`. So a `--require` preload (through `NODE_OPTIONS`) adds
`Authorization: Bearer <key>` to the CLI's requests to Portico's origin, and to nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico

REPO = Path(__file__).resolve().parents[1]
FALLBACK_BIN = REPO / ".ci" / "node" / "node_modules" / ".bin" / "mcp-inspector"
RUN_TIMEOUT = 60

PRELOAD = """\
const origin = process.env.PORTICO_INSPECTOR_ORIGIN;
const token = process.env.PORTICO_INSPECTOR_BEARER;
const upstreamFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const request = input instanceof Request ? input : undefined;
  const url = String(request ? request.url : input);
  if (!token || !url.startsWith(origin + "/")) return upstreamFetch(input, init);
  const headers = new Headers(init.headers ?? request?.headers);
  headers.set("authorization", `Bearer ${token}`);
  return upstreamFetch(input, { ...init, headers });
};
"""

Inspector = Callable[..., subprocess.CompletedProcess[str]]


def inspector_bin() -> Path:
    configured = os.environ.get("PORTICO_INSPECTOR_BIN")
    binary = Path(configured) if configured else FALLBACK_BIN
    problem = None
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        problem = f"MCP Inspector CLI not found at {binary} (PORTICO_INSPECTOR_BIN, or run .ci/run to install it)"
    elif shutil.which("node") is None:
        problem = "the MCP Inspector CLI needs node on PATH"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return binary


@pytest.fixture(scope="module")
def tenant(portico_local: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico_local)


@pytest.fixture(scope="module")
def inspector(portico_local: RunningPortico, tmp_path_factory: pytest.TempPathFactory) -> Inspector:
    """Run `mcp-inspector --cli <Portico /mcp> ARGS...` as the holder of `key` (None: no Authorization header)."""
    binary = inspector_bin()
    preload = tmp_path_factory.mktemp("inspector") / "bearer-preload.cjs"
    preload.write_text(PRELOAD)
    node_options = f"{os.environ.get('NODE_OPTIONS', '')} --require {json.dumps(str(preload))}".strip()

    def run(*arguments: str, key: str | None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "NODE_OPTIONS": node_options,
            "PORTICO_INSPECTOR_ORIGIN": portico_local.url,
            "PORTICO_INSPECTOR_BEARER": key or "",
        }
        return subprocess.run(
            [str(binary), "--cli", portico_local.mcp, *arguments],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    return run


def output(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert completed.returncode == 0, f"exit {completed.returncode}:\n{completed.stderr}\n{completed.stdout}"
    parsed: dict[str, Any] = json.loads(completed.stdout)
    return parsed


def test_tools_list(inspector: Inspector, tenant: WorkspaceKey) -> None:
    listed = output(inspector("--method", "tools/list", key=tenant.key))
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert {"files_list", "files_create_from_text", "echo", "operations_call"} <= tools.keys()
    assert "workspaces_create" not in tools
    assert tools["files_list"]["annotations"]["readOnlyHint"] is True
    assert "outputSchema" in tools["files_list"]


def test_without_a_key_the_inspector_is_refused(inspector: Inspector) -> None:
    refused = inspector("--method", "tools/list", key=None)
    assert refused.returncode != 0
    assert "No API key" in refused.stderr


def test_echo(inspector: Inspector, tenant: WorkspaceKey) -> None:
    called = output(
        inspector("--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi", key=tenant.key)
    )
    assert called.get("isError") is not True
    assert called["structuredContent"]["message"] == "hi"
    assert called["structuredContent"]["workspace_id"] == tenant.workspace_id


def test_create_from_text_then_read_the_resources(inspector: Inspector, tenant: WorkspaceKey) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
    text = json.dumps({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
    created = output(
        inspector(
            "--method",
            "tools/call",
            "--tool-name",
            "files_create_from_text",
            "--tool-arg",
            "filename=inspector.jsonl",
            "purpose=batch",
            f"text={text}",
            key=tenant.key,
        )
    )
    assert created.get("isError") is not True, created
    file = created["structuredContent"]
    assert (file["filename"], file["purpose"], file["bytes"]) == ("inspector.jsonl", "batch", len(text.encode()))

    uri = f"portico://files/{file['id']}"
    [metadata] = output(inspector("--method", "resources/read", "--uri", uri, key=tenant.key))["contents"]
    assert (metadata["uri"], metadata["mimeType"]) == (uri, "application/json")
    assert json.loads(metadata["text"]) == file

    [content] = output(inspector("--method", "resources/read", "--uri", f"{uri}/content", key=tenant.key))["contents"]
    assert (content["mimeType"], content["text"]) == ("text/plain", text)
