"""Google Vertex AI simulator: Gemini ``generateContent``, ``streamGenerateContent`` (SSE with ``?alt=sse``, else a
JSON array), ``countTokens``, and ``predict`` for text-embedding models, under the publisher-model path
``/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{action}``.

Starlette cannot split ``{model}:{action}`` itself (a path segment holds both), so one route takes the segment and
dispatches on the action through `ACTIONS`. Errors are Google's ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import (
    Finish,
    InvalidRequest,
    Prompt,
    Reply,
    Role,
    Tool,
    Turn,
    count_words,
    dimensions_of,
    embedding,
    message_turns,
    respond,
    structured_text,
    word_deltas,
)
from providers.simulators.edge import Call, Dialect, Endpoint, endpoint, has_bearer, require, sse

MODEL_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{model_action}"
# Gemini reports a function call with STOP: there is no separate tool-call finish reason.
FINISH_REASONS = {Finish.STOP: "STOP", Finish.TOOL_CALL: "STOP", Finish.LENGTH: "MAX_TOKENS"}
ROLES: dict[str, Role] = {"user": "user", "model": "assistant", "function": "user"}
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# A functionResponse.response of one of these single keys carries the tool's text (as OpenAI's tool content).
RESULT_KEYS = ("content", "result", "output")


def error(status: int, message: str) -> Response:
    label = STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return JSONResponse({"error": {"code": status, "message": message, "status": label}}, status_code=status)


DIALECT = Dialect(
    error=error,
    authorized=has_bearer,
    unauthorized_status=401,
    unauthorized_message="Request had invalid authentication credentials. Expected OAuth 2 access token.",
)


def _field(body: dict[str, Any], camel: str, snake: str) -> Any:
    """Google's JSON mapping accepts both the lowerCamel and the proto (snake_case) field name."""
    return body.get(camel, body.get(snake))


def prompt_of(body: dict[str, Any]) -> Prompt:
    turns: list[Turn] = []
    system = _field(body, "systemInstruction", "system_instruction")
    if isinstance(system, dict):
        turns += message_turns("system", _blocks("system", system.get("parts")))
    for index, content in enumerate(require(body, "contents", list)):
        if not isinstance(content, dict) or content.get("role", "user") not in ROLES:
            raise InvalidRequest(f"contents[{index}] must be an object with role user|model")
        role = ROLES[content.get("role", "user")]
        turns += message_turns(role, _blocks(role, content.get("parts")))
    tools = [tool for entry in body.get("tools") or () if isinstance(entry, dict) for tool in _declarations(entry)]
    config = _field(body, "generationConfig", "generation_config") or {}
    max_tokens = _field(config, "maxOutputTokens", "max_output_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise InvalidRequest("generationConfig.maxOutputTokens must be an integer")
    return Prompt(turns, tools, max_tokens)


def _blocks(role: Role, parts: object) -> Iterator[Turn]:
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            yield Turn(role, part["text"])
        response = _field(part, "functionResponse", "function_response")
        if isinstance(response, dict):
            yield Turn("tool", _result_text(response.get("response")))


def _result_text(response: object) -> str:
    if isinstance(response, dict) and len(response) == 1:
        key = next(iter(response))
        return structured_text(response[key]) if key in RESULT_KEYS else structured_text(response)
    return structured_text(response if response is not None else {})


def _declarations(entry: dict[str, Any]) -> Iterator[Tool]:
    for declaration in _field(entry, "functionDeclarations", "function_declarations") or ():
        if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
            raise InvalidRequest("each functionDeclarations[] entry must be an object with a 'name'")
        schema = declaration.get("parameters") or _field(declaration, "parametersJsonSchema", "parameters_json_schema")
        yield Tool(declaration["name"], schema or {})


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.completion_tokens,
        "totalTokenCount": reply.total_tokens,
    }


def _response(call: Call, parts: list[dict[str, Any]], reply: Reply | None) -> dict[str, Any]:
    """One GenerateContentResponse; `reply` is given on the last (or only) one, which ends the candidate."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    body: dict[str, Any] = {"candidates": [candidate]}
    if reply is not None:
        candidate["finishReason"] = FINISH_REASONS[reply.finish]
        body["usageMetadata"] = _usage(reply)
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {**body, "modelVersion": call.model, "createTime": created, "responseId": _response_id(call)}


def _response_id(call: Call) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"portico-sim-vertex/{call.sequence}").hex[:22]


def _parts(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_call is not None:
        return [{"functionCall": {"name": reply.tool_call.name, "args": reply.tool_call.arguments}}]
    return [{"text": reply.text}]


async def generate_content(call: Call) -> Response:
    reply = respond(prompt_of(call.body))
    return JSONResponse(_response(call, _parts(reply), reply))


async def stream_generate_content(call: Call) -> Response:
    reply = respond(prompt_of(call.body))
    if reply.tool_call is not None:
        chunks = [_response(call, _parts(reply), reply)]
    else:
        deltas = word_deltas(reply.text) or [""]
        chunks = [_response(call, [{"text": text}], None) for text in deltas[:-1]]
        chunks.append(_response(call, [{"text": deltas[-1]}], reply))
    if call.request.query_params.get("alt") == "sse":
        return sse(chunks)
    return JSONResponse(chunks)  # without alt=sse the stream is one JSON array of responses


async def count_tokens(call: Call) -> Response:
    prompt = prompt_of(call.body)
    total = sum(count_words(turn.text) for turn in prompt.turns)
    characters = sum(len(turn.text) for turn in prompt.turns)
    return JSONResponse({"totalTokens": total, "totalBillableCharacters": characters})


async def predict(call: Call) -> Response:
    instances = require(call.body, "instances", list)
    if not instances or not all(isinstance(i, dict) and isinstance(i.get("content"), str) for i in instances):
        raise InvalidRequest("'instances' must be a non-empty array of objects with a 'content' string")
    parameters = call.body.get("parameters") or {}
    dimensions = dimensions_of(parameters.get("outputDimensionality"))
    predictions = [
        {
            "embeddings": {
                "values": embedding(instance["content"], dimensions),
                "statistics": {"token_count": count_words(instance["content"]), "truncated": False},
            }
        }
        for instance in instances
    ]
    characters = sum(len(instance["content"]) for instance in instances)
    return JSONResponse({"predictions": predictions, "metadata": {"billableCharacterCount": characters}})


def _model(request: Request, _: dict[str, Any]) -> str:
    return str(request.path_params["model_action"]).rpartition(":")[0]


ACTIONS: dict[str, Endpoint] = {
    action: endpoint(DIALECT, action, handler, _model)
    for action, handler in [
        ("generateContent", generate_content),
        ("streamGenerateContent", stream_generate_content),
        ("countTokens", count_tokens),
        ("predict", predict),
    ]
}


async def dispatch(request: Request) -> Response:
    model, _, action = str(request.path_params["model_action"]).rpartition(":")
    serve = ACTIONS.get(action)
    if not model or serve is None:
        known = ", ".join(sorted(ACTIONS))
        return error(404, f"Unknown method '{action}' on publisher model '{model}'; the simulator serves {known}.")
    return await serve(request)


def routes() -> list[BaseRoute]:
    return [Route(MODEL_PATH, dispatch, methods=["POST"])]
