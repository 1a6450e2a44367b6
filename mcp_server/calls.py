"""Running a registry operation on behalf of an MCP request: who is calling, and turning errors into tool errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from portico.auth import WORKSPACE_HEADER
from portico.context import CallContext, Principal, Services
from portico.dispatch import build_context, invoke, parse_arguments
from portico.errors import PorticoError
from portico.registry import Operation

PRINCIPAL_SCOPE_KEY = "portico.principal"

# How a transport tells who is calling: over HTTP from the authenticated request, over stdio from configuration.
PrincipalSource = Callable[[Context], Principal]


def principal_from_request(ctx: Context) -> Principal:
    request = ctx.request_context.request
    principal = getattr(request, "scope", {}).get(PRINCIPAL_SCOPE_KEY) if request is not None else None
    if not isinstance(principal, Principal):
        raise ToolError("Not authenticated: connect with 'Authorization: Bearer <Portico API key>'.")
    return principal


def _request_value(ctx: Context, attribute: str) -> Any:
    request = ctx.request_context.request
    return getattr(request, attribute, None) if request is not None else None


async def call_context(services: Services, principal_of: PrincipalSource, ctx: Context) -> CallContext:
    """Who calls and in which workspace (an organisation key picks it with the workspace header), as REST does."""
    principal = principal_of(ctx)
    headers = _request_value(ctx, "headers")
    request_base = _request_value(ctx, "base_url")
    return await build_context(
        services,
        principal,
        workspace_header=headers.get(WORKSPACE_HEADER) if headers is not None else None,
        base_url=str(request_base).rstrip("/") + "/v1" if request_base is not None else "",
        report_progress=ctx.report_progress,
    )


def tool_error(error: PorticoError) -> ToolError:
    code = f", code {error.code}" if error.code else ""
    return ToolError(f"{error.message} (HTTP {error.status}, {error.error_type}{code})")


async def run_operation(
    operation: Operation, services: Services, principal_of: PrincipalSource, ctx: Context, arguments: dict[str, Any]
) -> Any:
    """Validate, authorise and run `operation`; a Portico error becomes a tool error carrying its message."""
    try:
        call = await call_context(services, principal_of, ctx)
        return await invoke(operation, call, parse_arguments(operation, arguments))
    except PorticoError as error:
        raise tool_error(error) from error
