"""The search / describe / call trio: every operation is reachable, while `tools/list` stays short.

Agents cope with tens of tools, not hundreds, so only the configured toolsets are listed; these three tools reach
the rest (DESIGN.md §8).
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_server.calls import PrincipalSource, run_operation
from portico.context import Services
from portico.registry import Operation, Registry


class OperationSummary(BaseModel):
    name: str
    toolset: str
    summary: str
    http: str | None = Field(None, description="The REST equivalent, e.g. 'GET /v1/files'.")


class SearchResult(BaseModel):
    operations: list[OperationSummary]


class OperationDescription(OperationSummary):
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    read_only: bool
    destructive: bool


def _summary(op: Operation) -> OperationSummary:
    return OperationSummary(
        name=op.name, toolset=op.toolset, summary=op.summary, http=f"{op.method} /v1{op.path}" if op.path else None
    )


def add_discovery_tools(mcp: MCPServer, registry: Registry, services: Services, principal_of: PrincipalSource) -> None:
    def find(name: str) -> Operation:
        op = registry.get(name)
        if op is None or not op.mcp:
            raise ToolError(f"No operation named '{name}'; use operations_search to find one.")
        return op

    async def operations_search(
        query: str = Field(description="Words to look for, e.g. 'files list'."),
    ) -> SearchResult:
        """Find Portico operations by words in their name, summary or REST path; returns names for operations_call."""
        return SearchResult(operations=[_summary(op) for op in registry.search(query)])

    async def operations_describe(
        name: str = Field(description="An operation name from operations_search."),
    ) -> OperationDescription:
        """Show one operation's input schema (the 'arguments' operations_call takes) and output schema."""
        op = find(name)
        return OperationDescription(
            **_summary(op).model_dump(),
            input_schema=op.input_model.model_json_schema(),
            output_schema=op.output_model.model_json_schema() if op.output_model else None,
            read_only=op.read_only,
            destructive=op.destructive,
        )

    async def operations_call(
        ctx: Context,
        name: str = Field(description="The operation to run."),
        arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments per operations_describe."),
    ) -> dict[str, Any]:
        """Run any Portico operation by name with a JSON object of arguments."""
        result = await run_operation(find(name), services, principal_of, ctx, arguments)
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else {"result": result}

    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    mcp.add_tool(operations_search, annotations=read_only)
    mcp.add_tool(operations_describe, annotations=read_only)
    mcp.add_tool(operations_call, annotations=ToolAnnotations(open_world_hint=False))
