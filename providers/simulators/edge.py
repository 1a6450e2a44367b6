"""How a request enters a simulator: the vendor's credential check, the JSON body, admission (counters, latency,
injected failures), and errors in the vendor's own shape. Vendor modules write only the handler behind it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from portico import json_codec
from providers.simulators.behaviour import InvalidRequest
from providers.simulators.controls import SimulatorControls, controls_of

ErrorRenderer = Callable[[int, str], Response]


@dataclass(frozen=True)
class Dialect:
    """One vendor's edge conventions."""

    error: ErrorRenderer
    authorized: Callable[[Request], bool]
    unauthorized_status: int
    unauthorized_message: str

    async def http_exception(self, _: Request, exc: Exception) -> Response:
        """Starlette's own 404/405s (unknown path or method), in the vendor's error shape."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return self.error(status, detail)


@dataclass(frozen=True)
class Call:
    """An admitted request, as a handler sees it."""

    request: Request
    body: dict[str, Any]
    model: str
    controls: SimulatorControls
    started: float
    # This request's number on this server (from 1, never reset), for response ids that differ between calls.
    sequence: int

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


Handler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
ModelOf = Callable[[Request, dict[str, Any]], str]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]


def has_bearer(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def model_in_body(_: Request, body: dict[str, Any]) -> str:
    return str(body.get("model") or "")


def endpoint(
    dialect: Dialect,
    route: str,
    handler: Handler,
    model_of: ModelOf = model_in_body,
    read: BodyReader | None = None,
) -> Endpoint:
    """Wrap `handler` with auth, body parsing (JSON unless `read` says otherwise, e.g. a multipart form) and
    admission; bad input becomes a 400 in the vendor's shape."""

    async def serve(request: Request) -> Response:
        started = time.monotonic()
        if not dialect.authorized(request):
            return dialect.error(dialect.unauthorized_status, dialect.unauthorized_message)
        try:
            body = await (read or _json_body)(request)
            model = model_of(request, body)
        except InvalidRequest as error:
            return dialect.error(400, str(error))
        controls = controls_of(request)
        sequence = controls.next_sequence()
        failure = await controls.admit(request, route, model)
        if failure is not None:
            response = dialect.error(failure.status, failure.message)
            response.headers.update(failure.headers())
            return response
        try:
            served = await handler(Call(request, body, model, controls, started, sequence))
        except InvalidRequest as error:
            return dialect.error(400, str(error))
        lost = controls.failure_after_serving(route) if served.status_code < 400 else None
        if lost is None:
            return served
        response = dialect.error(lost.status, lost.message)
        response.headers.update(lost.headers())
        return response

    return serve


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json_codec.loads(raw)
    except ValueError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


class FastJSONResponse(JSONResponse):
    """A JSON answer encoded with orjson: same compact UTF-8 text as Starlette's, for a fraction of the CPU (the
    inference endpoints answer every request of a benchmark)."""

    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content)


def sse(events: Iterable[object], *, done: bool = False, headers: dict[str, str] | None = None) -> StreamingResponse:
    """Server-sent events, one ``data: <json>`` line per event, then ``data: [DONE]`` if the vendor sends it."""

    async def lines() -> AsyncIterator[bytes]:
        for event in events:
            yield b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
        if done:
            yield b"data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers=headers)


def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """A required body field of the given JSON type, or a 400 naming it."""
    value = body.get(name)
    if not isinstance(value, kind):
        raise InvalidRequest(f"'{name}' is required and must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "an array", dict: "an object", int: "an integer", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
