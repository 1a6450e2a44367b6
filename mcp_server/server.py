"""The MCP server, generated from the registry: the configured toolsets as tools, every operation with a
`resource_uri` as a resource template, and the discovery trio for the rest."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_server.calls import PrincipalSource
from mcp_server.discovery import add_discovery_tools
from mcp_server.tools import add_resource_template, add_tool
from portico.context import Services
from portico.registry import Registry

INSTRUCTIONS = """\
Portico is an AI gateway implementing the Portkey API. Files live in your workspace: create them from text with
files_create_from_text, or for large files get a one-time URL with files_create_upload_url and PUT the bytes.
Read file metadata at portico://files/{file_id} and text at portico://files/{file_id}/content.
Only some toolsets are listed; operations_search / operations_describe / operations_call reach every operation."""

DISCOVERY = "discovery"


def build_mcp_server(registry: Registry, services: Services, principal_of: PrincipalSource) -> MCPServer:
    mcp: MCPServer = MCPServer(name="portico", version="0.1.0", instructions=INSTRUCTIONS)
    enabled = set(services.settings.mcp_toolsets)
    listed_all = "all" in enabled
    for operation in registry.mcp_operations():
        if listed_all or operation.toolset in enabled:
            add_tool(mcp, operation, services, principal_of)
        if operation.resource_uri:
            add_resource_template(mcp, operation, services, principal_of)
    if listed_all or DISCOVERY in enabled:
        add_discovery_tools(mcp, registry, services, principal_of)
    return mcp
