"""The MCP server, generated from the registry: the configured toolsets as tools, every operation with a
`resource_uri` as a resource template, the discovery trio for the rest, and the job tools.

Resource updates are pushed in both protocol eras from one Redis-backed bus (`mcp_server.updates`), whose reader
runs for the server's lifespan (entered by the app's `session_manager.run()`, or by `run_stdio_async`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.mcpserver import MCPServer

from mcp_server.calls import PrincipalSource
from mcp_server.discovery import add_discovery_tools
from mcp_server.jobs import add_job_tools
from mcp_server.subscriptions import Subscriptions
from mcp_server.tools import add_resource_template, add_tool
from mcp_server.updates import JobUpdates
from portico.context import Services
from portico.registry import Registry

INSTRUCTIONS = """\
Portico is an AI gateway implementing the Portkey API. Files live in your workspace: create them from text with
files_create_from_text, or for large files get a one-time URL with files_create_upload_url and PUT the bytes.
Read file metadata at portico://files/{file_id} and text at portico://files/{file_id}/content.
Batches run a 'batch' JSONL file (batches_create); read one at portico://batches/{batch_id}, subscribe to that
resource for updates, or call wait_for_job to wait for it with progress.
Fine-tuning jobs (fine_tuning_jobs_create on a 'fine-tune' file) run on OpenAI, Bedrock or Vertex; read one at
portico://fine_tuning_jobs/{fine_tuning_job_id}, its events at .../events, or wait_for_job(kind='fine_tuning_jobs').
Only some toolsets are listed; operations_search / operations_describe / operations_call reach every operation."""

DISCOVERY = "discovery"
JOBS = "jobs"


def build_mcp_server(registry: Registry, services: Services, principal_of: PrincipalSource) -> MCPServer[Any]:
    hub = JobUpdates(services)

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        async with hub.running():
            yield {}

    mcp: MCPServer[Any] = MCPServer(
        name="portico", version="0.1.0", instructions=INSTRUCTIONS, subscriptions=hub, lifespan=lifespan
    )
    enabled = set(services.settings.mcp_toolsets)
    listed_all = "all" in enabled
    for operation in registry.mcp_operations():
        if listed_all or operation.toolset in enabled:
            add_tool(mcp, operation, services, principal_of)
        if operation.resource_uri:
            add_resource_template(mcp, operation, services, principal_of)
    if listed_all or DISCOVERY in enabled:
        add_discovery_tools(mcp, registry, services, principal_of)
    if listed_all or JOBS in enabled:
        add_job_tools(mcp, registry, services, principal_of, hub)
    Subscriptions(mcp, services, principal_of, hub).install()
    return mcp
