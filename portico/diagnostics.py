"""Diagnostics: an echo that also says who the caller is, for agents checking their connection (and as the
baseline the MCP latency benchmark compares real tools against)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from portico.context import CallContext
from portico.registry import operation


class EchoInput(BaseModel):
    message: str = Field("ping", max_length=10_000, description="Any text; it comes back unchanged.")


class EchoOutput(BaseModel):
    message: str
    workspace_id: str = Field(description="The workspace this connection acts in.")
    api_key_id: str


@operation(
    name="echo",
    summary="Echo a message back with the workspace and API key this connection acts as (a connectivity check).",
    toolset="discovery",
    input_model=EchoInput,
    output_model=EchoOutput,
    scope=None,
    read_only=True,
    idempotent=True,
)
async def echo(ctx: CallContext, args: EchoInput) -> EchoOutput:
    return EchoOutput(message=args.message, workspace_id=ctx.workspace_id, api_key_id=ctx.principal.api_key_id)
