"""`/mcp` end to end: the real app under uvicorn, driven by the MCP Python SDK's `Client` over streamable HTTP in
both protocol eras (2025-11-25 through the initialize handshake, 2026-07-28 as the SDK negotiates by default), and
by plain httpx for what the transport guards at the HTTP level."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent, TextResourceContents

from portico.catalogue import load_registry
from portico.settings import MIB
from tests.support.inspect import stored_blob_keys
from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico

# Negotiated protocol version → how the client is told to reach it.
MODES = {"2025-11-25": "legacy", "2026-07-28": "auto"}
FILES_TOOLS = {
    "files_list",
    "files_retrieve",
    "files_delete",
    "files_read_text",
    "files_create_from_text",
    "files_create_upload_url",
}
DISCOVERY_TOOLS = {"operations_search", "operations_describe", "operations_call", "echo"}
# What a raw client sends first; the guards under test answer before the MCP layer reads it.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(params=list(MODES))
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def tenant(portico_local: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico_local)


@pytest.fixture(scope="module")
def neighbour(portico_local: RunningPortico) -> WorkspaceKey:
    return create_workspace_key(portico_local)


@contextlib.asynccontextmanager
async def connect(portico: RunningPortico, key: str, protocol: str) -> AsyncIterator[Client]:
    """An MCP session authenticated with `key`. No client-side response cache: every read reaches the server."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30)) as http:
        transport = streamable_http_client(portico.mcp, http_client=http)
        async with Client(transport, mode=MODES[protocol], cache=None) as client:
            assert client.protocol_version == protocol
            yield client


async def call_ok(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def read_text_resource(client: Client, uri: str) -> TextResourceContents:
    [contents] = (await client.read_resource(uri)).contents
    assert isinstance(contents, TextResourceContents)
    return contents


async def file_ids(client: Client, purpose: str | None = None) -> list[str]:
    arguments: dict[str, Any] = {"limit": 10000} | ({"purpose": purpose} if purpose else {})
    page = await call_ok(client, "files_list", arguments)
    assert not page["has_more"]
    return [item["id"] for item in page["data"]]


def batch_line(custom_id: str, content: str = "Say hi") -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"


def fine_tune_jsonl(at_least: int) -> bytes:
    lines: list[bytes] = []
    size = 0
    while size < at_least:
        example = {
            "messages": [
                {"role": "user", "content": f"Question {len(lines)}: what is {len(lines)} squared? " + "x" * 80},
                {"role": "assistant", "content": str(len(lines) ** 2)},
            ]
        }
        lines.append(json.dumps(example).encode() + b"\n")
        size += len(lines[-1])
    return b"".join(lines)


async def test_tools_list_is_the_files_and_discovery_toolsets(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    async with connect(portico_local, tenant.key, protocol) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    registry = load_registry()
    assert tools.keys() >= FILES_TOOLS | DISCOVERY_TOOLS
    listed_by_default = {
        op.name
        for op in registry.mcp_operations()
        if op.toolset in ("files", "inference", "batches", "finetune", "discovery")
    }
    trio = {"operations_search", "operations_describe", "operations_call"}
    assert tools.keys() == listed_by_default | trio | {"wait_for_job"}
    admin = {op.name for op in registry if op.toolset == "admin"}
    assert {"workspaces_create", "workspaces_list", "api_keys_create"} <= admin
    assert not admin & tools.keys(), "the admin toolset is reachable through operations_call, not listed"
    assert not {"files_upload", "files_download"} & tools.keys(), "REST-only operations are not tools"

    delete, listing = tools["files_delete"].annotations, tools["files_list"].annotations
    assert delete is not None and listing is not None
    assert (delete.destructive_hint, delete.read_only_hint) == (True, False)
    assert (listing.read_only_hint, listing.destructive_hint) == (True, False)

    for name, tool in tools.items():
        assert tool.description and tool.description.strip(), name
        operation = registry.get(name)
        if operation is not None and operation.output_model is not None:
            assert tool.output_schema is not None, name
            assert set(operation.output_model.model_fields) <= set(tool.output_schema["properties"]), name
    search_schema = tools["operations_search"].output_schema
    assert search_schema is not None and "operations" in search_schema["properties"]


async def test_file_lifecycle_through_tools_and_resources(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    text = batch_line("req-1", "Grüße, 世界") + batch_line("req-2", "Say 2")
    async with connect(portico_local, tenant.key, protocol) as client:
        created = await call_ok(
            client, "files_create_from_text", {"filename": "requests.jsonl", "purpose": "batch", "text": text}
        )
        assert created["id"].startswith("file-")
        assert (created["bytes"], created["purpose"], created["filename"]) == (
            len(text.encode()),
            "batch",
            "requests.jsonl",
        )
        file_id = created["id"]

        metadata = await read_text_resource(client, f"portico://files/{file_id}")
        assert metadata.mime_type == "application/json"
        assert json.loads(metadata.text) == created
        content = await read_text_resource(client, f"portico://files/{file_id}/content")
        assert content.mime_type == "text/plain"
        assert content.text == text

        deleted = await call_ok(client, "files_delete", {"file_id": file_id})
        assert deleted == {"id": file_id, "object": "file", "deleted": True}
        gone = await client.call_tool("files_retrieve", {"file_id": file_id})
        assert f"No file with id '{file_id}'" in error_text(gone)
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"portico://files/{file_id}")
        assert raised.value.code == INVALID_PARAMS
        assert f"No file with id '{file_id}'" in raised.value.message


async def test_invalid_batch_jsonl_is_refused_with_line_and_rule(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    async with connect(portico_local, tenant.key, protocol) as client:
        kept = await call_ok(
            client, "files_create_from_text", {"filename": "ok.jsonl", "purpose": "batch", "text": batch_line("a")}
        )
        before = await file_ids(client)
        blobs_before = stored_blob_keys(portico_local.settings)
        assert kept["id"] in before

        duplicate = batch_line("req-7") + batch_line("req-7", "again")
        refused = await client.call_tool(
            "files_create_from_text", {"filename": "bad.jsonl", "purpose": "batch", "text": duplicate}
        )
        message = error_text(refused)
        assert 'line 2: custom_id "req-7" repeats line 1' in message
        assert "code duplicate_custom_id" in message, "the stable error code reaches MCP clients too"
        assert "unique custom_id" in message

        assert await file_ids(client) == before
    assert stored_blob_keys(portico_local.settings) == blobs_before, "the refused file leaves no bytes behind"


async def test_upload_url_takes_a_file_larger_than_a_tool_argument_once(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    data = fine_tune_jsonl(6 * MIB)
    assert len(data) > 4 * MIB, "more than the 4 MiB request cap that bounds tool arguments"
    async with connect(portico_local, tenant.key, protocol) as client:
        grant = await call_ok(client, "files_create_upload_url", {"filename": "train.jsonl", "purpose": "fine-tune"})
        assert grant["method"] == "PUT"
        assert grant["upload_url"].startswith(f"{portico_local.api}/portico/uploads/")

        async with httpx.AsyncClient(timeout=60) as http:  # no API key: the URL is the credential
            put = await http.put(grant["upload_url"], content=data)
            assert put.status_code == 200, put.text
            uploaded = put.json()
            assert uploaded["id"].startswith("file-")
            assert (uploaded["object"], uploaded["bytes"], uploaded["filename"], uploaded["purpose"]) == (
                "file",
                len(data),
                "train.jsonl",
                "fine-tune",
            )
            replay = await http.put(grant["upload_url"], content=data)
            assert replay.status_code == 404, replay.text
            assert replay.json()["error"]["code"] == "upload_url_invalid"

        assert uploaded["id"] in await file_ids(client, purpose="fine-tune")
        assert await call_ok(client, "files_retrieve", {"file_id": uploaded["id"]}) == uploaded


async def test_discovery_reaches_admin_operations_within_the_key_scopes(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    async with connect(portico_local, tenant.key, protocol) as client:
        found = await call_ok(client, "operations_search", {"query": "workspace"})
        by_name = {op["name"]: op for op in found["operations"]}
        assert by_name["workspaces_create"]["http"] == "POST /v1/admin/workspaces"
        assert by_name["workspaces_create"]["toolset"] == "admin"
        assert "files_delete" not in by_name, "only operations matching the words"

        refused = await client.call_tool("operations_call", {"name": "workspaces_list", "arguments": {}})
        message = error_text(refused)
        assert "lacks the 'workspaces.list' scope" in message

    async with connect(portico_local, portico_local.admin_key, protocol) as admin:
        listed = await call_ok(admin, "operations_call", {"name": "workspaces_list", "arguments": {}})
    workspace_ids = {workspace["id"] for workspace in listed["data"]}
    assert {"ws-default", tenant.workspace_id} <= workspace_ids
    assert listed["total"] == len(listed["data"])


async def test_echo_names_the_workspace_of_the_key(
    portico_local: RunningPortico, tenant: WorkspaceKey, protocol: str
) -> None:
    async with connect(portico_local, tenant.key, protocol) as client:
        echoed = await call_ok(client, "echo", {"message": "hello, Portico ✓"})
    assert (echoed["message"], echoed["workspace_id"]) == ("hello, Portico ✓", tenant.workspace_id)

    async with connect(portico_local, portico_local.admin_key, protocol) as admin:
        as_admin = await call_ok(admin, "echo", {"message": "again"})
    assert (as_admin["message"], as_admin["workspace_id"]) == ("again", "ws-default")
    assert as_admin["api_key_id"] != echoed["api_key_id"]


@pytest.fixture
def raw_mcp(portico_local: RunningPortico) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portico_local.url, headers=MCP_ACCEPT, timeout=30) as http:
        yield http


def test_transport_guards_answer_before_mcp(raw_mcp: httpx.Client, tenant: WorkspaceKey) -> None:
    bearer = {"Authorization": f"Bearer {tenant.key}"}

    missing = raw_mcp.post("/mcp", json=INITIALIZE)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert "error=" not in missing.headers["www-authenticate"], "RFC 6750: no error code without credentials"
    assert missing.json()["error"]["type"] == "authentication_error"

    wrong = raw_mcp.post("/mcp", json=INITIALIZE, headers={"Authorization": "Bearer pk-not-a-real-key"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.json()["error"]["message"] == "Invalid API key."

    evil_origin = raw_mcp.post("/mcp", json=INITIALIZE, headers={**bearer, "Origin": "http://evil.example"})
    assert evil_origin.status_code == 403
    assert "mcp-session-id" not in evil_origin.headers
    # The DNS-rebinding defence does not depend on the page lacking a key: no key, same answer.
    assert raw_mcp.post("/mcp", json=INITIALIZE, headers={"Origin": "http://evil.example"}).status_code == 403

    foreign_host = raw_mcp.post("/mcp", json=INITIALIZE, headers={**bearer, "Host": "evil.example"})
    assert foreign_host.status_code == 421
    assert "mcp-session-id" not in foreign_host.headers

    # The same request with a loopback Origin and Host opens a session: the refusals above are the guards'.
    accepted = raw_mcp.post("/mcp", json=INITIALIZE, headers={**bearer, "Origin": "http://127.0.0.1"})
    assert accepted.status_code == 200, accepted.text
    session = accepted.headers["mcp-session-id"]
    closed = raw_mcp.delete("/mcp", headers={**bearer, "mcp-session-id": session})
    assert closed.status_code in (200, 204)


async def test_workspaces_do_not_see_each_others_files(
    portico_local: RunningPortico, tenant: WorkspaceKey, neighbour: WorkspaceKey, protocol: str
) -> None:
    text = batch_line("mine")
    async with connect(portico_local, tenant.key, protocol) as owner:
        created = await call_ok(
            owner, "files_create_from_text", {"filename": "private.jsonl", "purpose": "batch", "text": text}
        )
    file_id = created["id"]
    not_found = f"No file with id '{file_id}' exists in this workspace"

    async with connect(portico_local, neighbour.key, protocol) as other:
        own = await call_ok(
            other, "files_create_from_text", {"filename": "own.txt", "purpose": "assistants", "text": "theirs"}
        )
        for tool in ("files_retrieve", "files_read_text", "files_delete"):
            refused = await other.call_tool(tool, {"file_id": file_id})
            assert not_found in error_text(refused), tool
        for uri in (f"portico://files/{file_id}", f"portico://files/{file_id}/content"):
            with pytest.raises(MCPError) as raised:
                await other.read_resource(uri)
            assert raised.value.code == INVALID_PARAMS, uri
            assert not_found in raised.value.message, uri
        visible = await file_ids(other)
        assert own["id"] in visible
        assert file_id not in visible

    async with connect(portico_local, tenant.key, protocol) as owner:
        assert await call_ok(owner, "files_retrieve", {"file_id": file_id}) == created, "the refused delete did nothing"
        assert (await read_text_resource(owner, f"portico://files/{file_id}/content")).text == text
        assert own["id"] not in await file_ids(owner)
