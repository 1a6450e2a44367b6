"""MCP tools and resource templates, generated from the registry.

Each tool function gets a real signature built from the operation's input model (one keyword parameter per field,
carrying the field's type, default and description), so the SDK derives the exact input schema, validates
arguments, and derives the output schema from the output model for structured results.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import ToolAnnotations

from mcp_server.calls import PrincipalSource, run_operation
from portico.context import Services
from portico.errors import NotFound
from portico.registry import Operation


def _signature(operation: Operation) -> tuple[inspect.Signature, dict[str, Any]]:
    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    annotations: dict[str, Any] = {"ctx": Context}
    for name, field in operation.input_model.model_fields.items():
        annotation = Annotated[field.annotation, field]  # type: ignore[name-defined]
        # A default factory stays on the field (the SDK refuses a parameter default beside it): a fresh value per call.
        defaulted = not field.is_required() and field.default_factory is None
        default = field.get_default() if defaulted else inspect.Parameter.empty
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        annotations[name] = annotation
    returns = operation.output_model or Any
    annotations["return"] = returns
    return inspect.Signature(parameters, return_annotation=returns), annotations


def tool_function(operation: Operation, services: Services, principal_of: PrincipalSource) -> Any:
    async def tool(ctx: Context, **arguments: Any) -> Any:
        return await run_operation(operation, services, principal_of, ctx, arguments)

    signature, annotations = _signature(operation)
    tool.__signature__ = signature  # type: ignore[attr-defined]
    tool.__annotations__ = annotations
    tool.__name__ = operation.name
    tool.__doc__ = operation.summary
    return tool


def title_of(operation: Operation) -> str:
    """`files_create_upload_url` → `Files: create upload url`."""
    toolset, _, action = operation.name.partition("_")
    return f"{toolset.replace('-', ' ').capitalize()}: {action.replace('_', ' ')}" if action else toolset.capitalize()


def annotations_for(operation: Operation) -> ToolAnnotations:
    return ToolAnnotations(
        title=title_of(operation),
        read_only_hint=operation.read_only,
        destructive_hint=operation.destructive,
        idempotent_hint=operation.idempotent,
        open_world_hint=False,
    )


def add_tool(mcp: MCPServer, operation: Operation, services: Services, principal_of: PrincipalSource) -> None:
    mcp.add_tool(
        tool_function(operation, services, principal_of),
        name=operation.name,
        description=operation.summary,
        annotations=annotations_for(operation),
        structured_output=operation.output_model is not None,
    )


def add_resource_template(
    mcp: MCPServer, operation: Operation, services: Services, principal_of: PrincipalSource
) -> None:
    """`portico://files/{file_id}` reads call the operation with the URI's variables as its arguments."""
    assert operation.resource_uri is not None
    variables = re.findall(r"\{(\w+)\}", operation.resource_uri)
    text_field = "text" if operation.resource_mime_type.startswith("text/") else None

    async def read(ctx: Context, **arguments: str) -> str:
        try:
            result = await run_operation(operation, services, principal_of, ctx, arguments)
        except ToolError as error:
            # The SDK treats anything but a ResourceError as a crash: it would log a traceback and tell the client
            # only "Error creating resource from template <uri>", dropping the message (e.g. "No file with id ...").
            failure = ResourceNotFoundError if isinstance(error.__cause__, NotFound) else ResourceError
            raise failure(str(error)) from error
        if text_field is not None:
            return str(getattr(result, text_field))
        return json.dumps(result.model_dump(mode="json"))

    read.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
        + [inspect.Parameter(v, inspect.Parameter.KEYWORD_ONLY, annotation=str) for v in variables],
        return_annotation=str,
    )
    read.__annotations__ = {"ctx": Context, **dict.fromkeys(variables, str), "return": str}
    read.__name__ = f"read_{operation.name}"
    mcp.resource(
        operation.resource_uri,
        name=operation.name,
        description=operation.summary,
        mime_type=operation.resource_mime_type,
    )(read)
