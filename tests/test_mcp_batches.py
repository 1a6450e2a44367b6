"""The `batches` and `jobs` toolsets and pushed batch updates over `/mcp`, in both protocol eras.

The real app runs under uvicorn on real Redis. Batches are moved by a second `Services` on the same database and
Redis (`tests.support.mcp_jobs.BatchDriver`), through the batch store's own `transition`/`save`, so every update
reaches Portico the way a worker's does: published on Redis by another client, read back by Portico's bus reader.
Steps advance in lockstep with what the client has seen, never on a clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent

from batch import store
from portico import bus
from portico.services import close_services, open_services
from portico.settings import BatchSettings
from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.mcp_jobs import MODES, PATIENCE_SECONDS, BatchDriver, ProgressSeen, Watcher, connect, watching
from tests.support.server import RunningPortico, run_portico
from tests.test_mcp_inspector import PRELOAD, RUN_TIMEOUT, inspector_bin, output

BATCH_TOOLS = {"batches_create", "batches_list", "batches_retrieve", "batches_cancel", "wait_for_job"}


@pytest.fixture(params=list(MODES))
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def tenant(portico_local: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico_local)


@pytest.fixture(scope="module")
def neighbour(portico_local: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico_local)


@pytest.fixture(scope="module")
async def driver(portico_local: RunningPortico) -> AsyncIterator[BatchDriver]:
    """Another process's view of the same database and Redis."""
    services = await open_services(portico_local.settings, migrate=False)
    try:
        yield BatchDriver(services)
    finally:
        await close_services(services)


def uri_of(batch_id: str) -> str:
    return f"portico://batches/{batch_id}"


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def until_counts(watcher: Watcher, uri: str, status: str, completed: int, failed: int = 0) -> None:
    """Take updates of `uri` until a read after one shows this state (updates are level triggers: several changes
    may arrive as one, and one change may be announced twice)."""
    while True:
        assert await watcher.next() == uri
        batch = await watcher.read(uri)
        counts = batch["request_counts"]
        if (batch["status"], counts["completed"], counts["failed"]) == (status, completed, failed):
            return


async def test_batch_tools_are_listed_and_work_on_the_callers_batches(
    portico_local: RunningPortico, tenant: WorkspaceKey, neighbour: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    row = await driver.create(tenant.workspace_id, total=4)
    async with connect(portico_local, tenant.key, protocol) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools.keys() >= BATCH_TOOLS
        create_arguments = tools["batches_create"].input_schema["properties"]
        assert {"input_file_id", "endpoint", "completion_window", "portkey_options", "route"} <= create_arguments.keys()

        listed = (await client.call_tool("batches_list", {"limit": 100})).structured_content
        assert listed is not None and row.id in {batch["id"] for batch in listed["data"]}
        retrieved = (await client.call_tool("batches_retrieve", {"batch_id": row.id})).structured_content
        assert retrieved is not None
        assert (retrieved["status"], retrieved["request_counts"]["total"]) == ("validating", 4)

        missing = await client.call_tool(
            "batches_create",
            {"input_file_id": "file-missing", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
        )
        assert "file-missing" in error_text(missing) and "404" in error_text(missing)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
        text = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
        created = await client.call_tool(
            "files_create_from_text", {"filename": "b.jsonl", "purpose": "batch", "text": text}
        )
        assert created.structured_content is not None, created.content
        unrouted = await client.call_tool(
            "batches_create",
            {
                "input_file_id": created.structured_content["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert "No provider selected" in error_text(unrouted)

    async with connect(portico_local, neighbour.key, protocol) as client:
        foreign = await client.call_tool("batches_retrieve", {"batch_id": row.id})
        assert "404" in error_text(foreign)
        listed = (await client.call_tool("batches_list", {"limit": 100})).structured_content
        assert listed is not None and row.id not in {batch["id"] for batch in listed["data"]}


async def test_a_subscriber_sees_the_batch_progress_published_by_another_process(
    portico_local: RunningPortico, tenant: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    row = await driver.create(tenant.workspace_id, total=10)
    uri = uri_of(row.id)
    async with watching(portico_local, tenant.key, protocol, driver, tenant.workspace_id) as watcher:
        await watcher.subscribe(uri)
        await driver.start(row)
        await until_counts(watcher, uri, "in_progress", 0)
        await driver.count(row, completed=3)
        await until_counts(watcher, uri, "in_progress", 3)
        await driver.count(row, completed=7, failed=1)
        await until_counts(watcher, uri, "in_progress", 7, 1)
        await driver.count(row, completed=9, failed=1)
        await driver.finish(row)
        await until_counts(watcher, uri, "completed", 9, 1)


async def test_unsubscribing_stops_the_updates(
    portico_local: RunningPortico, tenant: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    first = await driver.create(tenant.workspace_id, total=2)
    second = await driver.create(tenant.workspace_id, total=2)
    async with watching(portico_local, tenant.key, protocol, driver, tenant.workspace_id) as watcher:
        await watcher.subscribe(uri_of(first.id), uri_of(second.id))
        await driver.start(first)
        assert await watcher.next() == uri_of(first.id)

        await watcher.unsubscribe(uri_of(first.id))
        # Redis delivers one publisher's messages in order, and so does each path to the client: had `first` still
        # been subscribed, its update would arrive before the one of `second` published after it.
        await driver.count(first, completed=1)
        await driver.start(second)
        assert await watcher.next() == uri_of(second.id)
        await driver.count(second, completed=1)
        assert await watcher.next() == uri_of(second.id)


async def test_another_workspaces_batch_cannot_be_subscribed_to(
    portico_local: RunningPortico, tenant: WorkspaceKey, neighbour: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    theirs = await driver.create(neighbour.workspace_id, total=1)
    async with watching(portico_local, tenant.key, protocol, driver, tenant.workspace_id) as watcher:
        for uri in (uri_of(theirs.id), uri_of("batch_does_not_exist")):
            with pytest.raises(MCPError) as refused:
                await watcher.subscribe(uri)
            assert refused.value.error.code == INVALID_PARAMS
            assert "No batch" in refused.value.error.message


async def test_updates_naming_another_workspace_are_withheld(
    portico_local: RunningPortico, tenant: WorkspaceKey, neighbour: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    """Defence in depth behind the subscribe-time check: a message that names another workspace for a URI never
    reaches this workspace's subscriber."""
    mine = await driver.create(tenant.workspace_id, total=1)
    other = await driver.create(tenant.workspace_id, total=1)
    async with watching(portico_local, tenant.key, protocol, driver, tenant.workspace_id) as watcher:
        await watcher.subscribe(uri_of(mine.id), uri_of(other.id))
        forged = {"status": "completed", "batch": store.to_wire(mine).model_dump()}
        await bus.publish(driver.services, "batches", mine.id, forged, workspace_id=neighbour.workspace_id)
        await bus.publish(
            driver.services, "batches", other.id, {"status": "validating"}, workspace_id=tenant.workspace_id
        )
        assert await watcher.next() == uri_of(other.id)
        await bus.publish(
            driver.services, "batches", mine.id, {"status": "validating"}, workspace_id=tenant.workspace_id
        )
        assert await watcher.next() == uri_of(mine.id)


async def test_wait_for_job_reports_progress_and_returns_the_finished_batch(
    portico_local: RunningPortico, tenant: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    row = await driver.create(tenant.workspace_id, total=10)
    await driver.start(row)
    seen = ProgressSeen()
    async with connect(portico_local, tenant.key, protocol) as client:
        arguments = {"kind": "batches", "id": row.id, "timeout_seconds": 600}
        waiting = asyncio.create_task(client.call_tool("wait_for_job", arguments, progress_callback=seen))
        await seen.reaches(0)
        await driver.count(row, completed=2)
        await seen.reaches(2)
        await driver.count(row, completed=5, failed=1)
        await seen.reaches(6)
        await driver.count(row, completed=9, failed=1)
        await driver.finish(row)
        async with asyncio.timeout(PATIENCE_SECONDS):
            result = await waiting

    assert not result.is_error, result.content
    outcome = result.structured_content
    assert outcome is not None
    assert (outcome["status"], outcome["finished"], outcome["timed_out"]) == ("completed", True, False)
    assert outcome["job"]["request_counts"] == {"total": 10, "completed": 9, "failed": 1}
    progress = [value for value, _, _ in seen.values]
    assert progress == sorted(set(progress)), "progress only grows"
    assert {0, 2, 6} <= set(progress)
    assert all(total == 10 for _, total, _ in seen.values)
    assert any(message and "in_progress" in message for _, _, message in seen.values)


async def test_wait_for_job_returns_the_current_state_when_it_times_out(
    portico_local: RunningPortico, tenant: WorkspaceKey, neighbour: WorkspaceKey, driver: BatchDriver, protocol: str
) -> None:
    row = await driver.create(tenant.workspace_id, total=3)
    await driver.start(row)
    await driver.count(row, completed=1)
    async with connect(portico_local, tenant.key, protocol) as client:
        result = await client.call_tool("wait_for_job", {"kind": "batches", "id": row.id, "timeout_seconds": 1})
        assert not result.is_error, result.content
        outcome = result.structured_content
        assert outcome is not None
        assert (outcome["status"], outcome["finished"], outcome["timed_out"]) == ("in_progress", False, True)
        assert "Timed out" in outcome["message"] and "in_progress" in outcome["message"]
        assert outcome["job"]["request_counts"]["completed"] == 1

        unknown = await client.call_tool("wait_for_job", {"kind": "vector_stores", "id": row.id})
        assert "Unknown job kind" in error_text(unknown)
        too_long = await client.call_tool("wait_for_job", {"kind": "batches", "id": row.id, "timeout_seconds": 3600})
        assert "timeout_seconds" in error_text(too_long)

    async with connect(portico_local, neighbour.key, protocol) as client:
        foreign = await client.call_tool("wait_for_job", {"kind": "batches", "id": row.id, "timeout_seconds": 0})
        assert "404" in error_text(foreign)


def test_the_inspector_cli_lists_and_calls_the_job_tools(
    portico_local: RunningPortico, tenant: WorkspaceKey, tmp_path: Path
) -> None:
    """A client nobody here wrote (MCP Inspector CLI 0.15, see tests/test_mcp_inspector.py for the set-up)."""
    binary = inspector_bin()
    preload = tmp_path / "bearer-preload.cjs"
    preload.write_text(PRELOAD)
    env = {
        **os.environ,
        "NODE_OPTIONS": f"{os.environ.get('NODE_OPTIONS', '')} --require {json.dumps(str(preload))}".strip(),
        "PORTICO_INSPECTOR_ORIGIN": portico_local.url,
        "PORTICO_INSPECTOR_BEARER": tenant.key,
    }

    def run(*arguments: str) -> dict[str, Any]:
        completed = subprocess.run(
            [str(binary), "--cli", portico_local.mcp, *arguments],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return output(completed)

    tools = {tool["name"]: tool for tool in run("--method", "tools/list")["tools"]}
    assert tools.keys() >= BATCH_TOOLS
    assert tools["wait_for_job"]["inputSchema"]["properties"]["timeout_seconds"]["maximum"] == 600
    assert tools["batches_retrieve"]["annotations"]["readOnlyHint"] is True

    called = run("--method", "tools/call", "--tool-name", "wait_for_job", "--tool-arg", "kind=batches", "id=batch_nope")
    assert called.get("isError") is True
    assert "No batch with id 'batch_nope'" in called["content"][0]["text"]


MANAGED_LINES = 60


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with running_simulator("openai", latency_ms=200) as url:
        yield url


@pytest.fixture(scope="module")
def managed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortico]:
    """Portico with its worker, running managed batches against the OpenAI simulator: slow upstream answers and
    little concurrency keep a batch running for seconds, over which its progress is announced about twice a second."""
    settings = stack_settings(
        request,
        STACKS["sqlite-local"],
        tmp_path_factory.mktemp("mcp-managed"),
        custom_host_allowlist=["127.0.0.1"],
        batch=BatchSettings(concurrency=4, chunk_lines=20),
    )
    with run_portico(settings, worker=True) as portico:
        yield portico


async def test_a_managed_batch_pushes_growing_counts_to_subscribers_and_to_wait_for_job(
    managed: RunningPortico, simulator: str, protocol: str
) -> None:
    key = create_workspace_key(managed, ("completions.write", "virtual_keys.create"))
    async with httpx.AsyncClient(base_url=managed.api, headers={"x-portkey-api-key": key.key}) as http:
        created = await http.post("/virtual-keys", json=virtual_key_body(simulator))
        assert created.status_code == 200, created.text
        virtual_key = created.json()["data"]["slug"]
    services = await open_services(managed.settings, migrate=False)
    try:
        async with watching(managed, key.key, protocol, BatchDriver(services), key.workspace_id) as watcher:
            reads, result, seen = await run_a_managed_batch(watcher, virtual_key)
    finally:
        await close_services(services)

    final = reads[-1]
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": MANAGED_LINES, "completed": MANAGED_LINES, "failed": 0}
    done = [batch["request_counts"]["completed"] + batch["request_counts"]["failed"] for batch in reads]
    assert done == sorted(done), "counts only grow"
    assert len({count for count in done if 0 < count < MANAGED_LINES}) >= 2, f"several updates mid-way: {done}"

    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert (result.structured_content["status"], result.structured_content["finished"]) == ("completed", True)
    progress = [value for value, _, _ in seen.values]
    assert progress == sorted(set(progress)) and progress[-1] == MANAGED_LINES
    assert len([value for value in progress if 0 < value < MANAGED_LINES]) >= 2, progress


def virtual_key_body(simulator: str) -> dict[str, str]:
    return {"name": "sim", "provider": "openai", "key": "sk-sim", "customHost": f"{simulator}/v1"}


async def run_a_managed_batch(
    watcher: Watcher, virtual_key: str
) -> tuple[list[dict[str, Any]], CallToolResult, ProgressSeen]:
    """Create the batch through MCP, subscribe to it and wait for it at once; read it on every update until final."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(MANAGED_LINES)
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    source = await watcher.client.call_tool(
        "files_create_from_text", {"filename": "m.jsonl", "purpose": "batch", "text": text}
    )
    assert source.structured_content is not None, source.content
    arguments = {
        "input_file_id": source.structured_content["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "immediate",
        "portkey_options": {"x-portkey-virtual-key": virtual_key},
    }
    created = await watcher.client.call_tool("batches_create", arguments)
    assert created.structured_content is not None, created.content
    batch_id = created.structured_content["id"]
    uri = uri_of(batch_id)
    await watcher.subscribe(uri)
    seen = ProgressSeen()
    waiting = asyncio.create_task(
        watcher.client.call_tool("wait_for_job", {"kind": "batches", "id": batch_id}, progress_callback=seen)
    )
    reads: list[dict[str, Any]] = []
    while not reads or reads[-1]["status"] not in store.TERMINAL:
        assert await watcher.next() == uri
        reads.append(await watcher.read(uri))
    async with asyncio.timeout(PATIENCE_SECONDS):
        return reads, await waiting, seen
