"""Calling an operation, the same way from every surface: validate the arguments, check the scope, run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from portico.auth import resolve_workspace
from portico.context import CallContext, Principal, ProgressReporter, Services
from portico.errors import InvalidRequest
from portico.registry import Operation


def invalid_arguments(error: ValidationError) -> InvalidRequest:
    """One message naming each offending field and the rule it broke, e.g. `purpose: Input should be 'batch'...`."""
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{location}: {item['msg']}")
    first = error.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    return InvalidRequest("Invalid arguments. " + "; ".join(problems), param=param, code="invalid_arguments")


def parse_arguments(operation: Operation, arguments: dict[str, Any]) -> BaseModel:
    try:
        return operation.input_model.model_validate(arguments)
    except ValidationError as error:
        raise invalid_arguments(error) from None


async def build_context(
    services: Services,
    principal: Principal,
    *,
    workspace_header: str | None = None,
    base_url: str = "",
    idempotency_key: str | None = None,
    report_progress: ProgressReporter | None = None,
) -> CallContext:
    workspace_id = await resolve_workspace(services, principal, workspace_header)
    return CallContext(
        principal=principal,
        services=services,
        workspace_id=workspace_id,
        base_url=base_url,
        idempotency_key=idempotency_key,
        report_progress=report_progress,
    )


async def invoke(operation: Operation, context: CallContext, arguments: BaseModel) -> Any:
    if operation.scope is not None:
        context.principal.require(operation.scope)
    return await operation.handler(context, arguments)
