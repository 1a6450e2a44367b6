"""The REST projection: one Starlette route under `/v1` for every registry operation with a method and path.

Arguments come from the path, the query string and the JSON body, merged into the operation's input model; an
operation with a `rest_reader` (a multipart upload) reads the request itself. Errors render in OpenAI's shape.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from portico import json_codec
from portico.auth import WORKSPACE_HEADER, authenticate
from portico.context import Services
from portico.dispatch import build_context, invoke, parse_arguments
from portico.errors import PorticoError
from portico.json_body import json_object
from portico.registry import Operation, Registry
from portico.request_headers import headers_of
from portico.streaming import StreamedContent
from rest_api.websockets import websocket_route

log = logging.getLogger(__name__)

API_PREFIX = "/v1"


def error_response(error: PorticoError) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status)


async def gather_arguments(request: Request) -> dict[str, Any]:
    arguments: dict[str, Any] = dict(request.query_params)
    if request.method in ("POST", "PUT", "PATCH"):
        arguments.update(await json_object(request))
    arguments.update(request.path_params)
    return arguments


def render(result: object) -> Response:
    if isinstance(result, BaseModel):
        return Response(result.model_dump_json(), media_type="application/json")
    if isinstance(result, dict):
        return Response(json_codec.dumps(result), media_type="application/json")
    if isinstance(result, StreamedContent):
        headers = {"content-length": str(result.length)} if result.length is not None else {}
        return StreamingResponse(result.chunks, media_type=result.media_type, headers=headers)
    raise TypeError(f"cannot render {type(result).__name__}")


# (scheme, Host header, server address, root path) -> the base URL they make: Starlette builds it through URL
# objects on every call (~5% of a chat request's CPU). Bounded, since the Host header is the caller's to choose.
_BASE_URLS: dict[tuple[object, ...], str] = {}
MAX_BASE_URLS = 256


def base_url(request: Request) -> str:
    scope = request.scope
    key = (scope.get("scheme"), headers_of(request).get("host"), scope.get("server"), scope.get("root_path", ""))
    found = _BASE_URLS.get(key)
    if found is None:
        found = str(request.base_url).rstrip("/") + API_PREFIX
        if len(_BASE_URLS) < MAX_BASE_URLS:
            _BASE_URLS[key] = found
    return found


def endpoint_for(operation: Operation, services: Services) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            headers = headers_of(request)
            principal = await authenticate(services, headers)
            ctx = await build_context(
                services,
                principal,
                workspace_header=headers.get(WORKSPACE_HEADER),
                base_url=base_url(request),
                idempotency_key=headers.get("idempotency-key"),
            )
            if operation.scope is not None:
                principal.require(operation.scope)
            if operation.rest_reader is not None:
                arguments = await operation.rest_reader(request, ctx)
            else:
                arguments = parse_arguments(operation, await gather_arguments(request))
            return render(await invoke(operation, ctx, arguments))
        except PorticoError as error:
            log.info("%s %s -> %s: %s", request.method, request.url.path, error.status, error.message)
            return error_response(error)

    endpoint.__name__ = operation.name
    return endpoint


def build_routes(registry: Registry, services: Services) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for op in registry.rest_operations():
        if op.websocket:
            routes.append(websocket_route(API_PREFIX, op, services))
        else:
            routes.append(
                Route(API_PREFIX + (op.rest_path or ""), endpoint_for(op, services), methods=[op.method or "GET"])
            )
    return routes
