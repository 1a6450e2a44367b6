"""The operation registry: each API operation declared once, as data (DESIGN.md §1).

An `Operation` names its handler, its pydantic input and output models, a one-line summary written for an LLM, its
toolset, the scope it needs and its hints. The REST routes (`rest_api.routes`), the MCP tools and resource
templates (`mcp_server.tools`) and the coverage report (`portico ops`) are all generated from `REGISTRY`.

An operation with `method`/`path` is served under `/v1` and counts toward spec coverage. One with `mcp=False`
is REST-only (its bytes do not fit a tool call, such as a multipart upload), and names the MCP operations that
reach the same function in `mcp_alternatives`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from starlette.requests import Request

    from portico.context import CallContext

Handler = Callable[["CallContext", Any], Awaitable[Any]]
# Builds the input model from the raw request, for bodies the generic JSON projection cannot read (multipart).
RestReader = Callable[["Request", "CallContext"], Awaitable[BaseModel]]
Plane = Literal["data", "control"]


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()


@dataclass(frozen=True)
class Operation:
    name: str
    summary: str
    toolset: str
    handler: Handler
    input_model: type[BaseModel]
    output_model: type[BaseModel] | None
    # The scope the caller's key must hold; None when the handler checks a scope that depends on the arguments.
    scope: str | None
    plane: Plane = "data"
    method: str | None = None
    path: str | None = None
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    mcp: bool = True
    # Served as a WebSocket at `path` (GET upgrade); the handler then receives a `WebSocketCall`.
    websocket: bool = False
    rest_reader: RestReader | None = None
    mcp_alternatives: tuple[str, ...] = ()
    # MCP resource template whose reads call this operation, e.g. `portico://files/{file_id}`.
    resource_uri: str | None = None
    resource_mime_type: str = "application/json"

    @property
    def rest_path(self) -> str | None:
        """`path` with its parameters named as the input model's fields: `{workspaceId}` → `{workspace_id}`,
        `{sub-type}` → `{sub_type}` (the spec mixes styles; input models use snake_case throughout)."""
        if self.path is None:
            return None
        return re.sub(r"\{([^}]+)\}", lambda m: "{" + snake_case(m.group(1)) + "}", self.path)

    @property
    def spec_key(self) -> tuple[str, str] | None:
        return (self.method, self.path) if self.method and self.path else None


@dataclass
class Registry:
    _operations: dict[str, Operation] = field(default_factory=dict)

    def add(self, operation: Operation) -> Operation:
        if operation.name in self._operations:
            raise ValueError(f"operation {operation.name!r} is declared twice")
        key = operation.spec_key
        if key and any(op.spec_key == key for op in self._operations.values()):
            raise ValueError(f"{key[0]} {key[1]} is declared twice")
        self._operations[operation.name] = operation
        return operation

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __len__(self) -> int:
        return len(self._operations)

    def get(self, name: str) -> Operation | None:
        return self._operations.get(name)

    def rest_operations(self) -> list[Operation]:
        return [op for op in self if op.spec_key]

    def mcp_operations(self) -> list[Operation]:
        return [op for op in self if op.mcp]

    def toolsets(self) -> dict[str, list[Operation]]:
        grouped: dict[str, list[Operation]] = {}
        for op in self.mcp_operations():
            grouped.setdefault(op.toolset, []).append(op)
        return grouped

    def search(self, query: str) -> list[Operation]:
        """Operations whose name, summary, toolset or path contain every word of `query`."""
        words = query.lower().split()

        def haystack(op: Operation) -> str:
            return f"{op.name} {op.summary} {op.toolset} {op.method or ''} {op.path or ''}".lower()

        return [op for op in self.mcp_operations() if all(w in haystack(op) for w in words)]


REGISTRY = Registry()


def operation(**declaration: Any) -> Callable[[Handler], Handler]:
    """Declare the decorated handler as an operation in `REGISTRY`; see `Operation` for the fields."""

    def register(handler: Handler) -> Handler:
        REGISTRY.add(Operation(handler=handler, **declaration))
        return handler

    return register
