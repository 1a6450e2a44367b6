"""AWS Bedrock runtime simulator: Converse, ConverseStream (binary event stream) and InvokeModel for embeddings.

Requests must carry a SigV4 ``Authorization: AWS4-HMAC-SHA256 Credential=...`` header and ``X-Amz-Date`` (the
signature itself is not checked). Errors are ``{"message": ...}`` with the error name in ``x-amzn-ErrorType``, which
is where botocore reads it. The model id is the URL-encoded path segment botocore sends (ARNs hold ':' and '/').
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from providers.simulators import eventstream
from providers.simulators.bedrock_control import servable
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
from providers.simulators.edge import Call, Dialect, endpoint, require

TOOL_USE_ID = "tooluse_sim_0"
STOP_REASONS = {Finish.STOP: "end_turn", Finish.TOOL_CALL: "tool_use", Finish.LENGTH: "max_tokens"}
ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant"}
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def error(status: int, message: str) -> Response:
    kind = ERROR_TYPES.get(status, "InternalServerException" if status >= 500 else "ValidationException")
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": kind})


def has_sigv4(request: Request) -> bool:
    authorization = request.headers.get("authorization", "")
    signed = authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization
    return signed and bool(request.headers.get("x-amz-date"))


DIALECT = Dialect(
    error=error,
    authorized=has_sigv4,
    unauthorized_status=403,
    unauthorized_message="Missing Authentication Token: sign the request with AWS Signature Version 4 "
    "(Authorization: AWS4-HMAC-SHA256 Credential=..., X-Amz-Date).",
)


def prompt_of(body: dict[str, Any]) -> Prompt:
    system = body.get("system") or []
    turns = [Turn("system", block["text"]) for block in system if isinstance(block, dict) and "text" in block]
    for index, message in enumerate(require(body, "messages", list)):
        turns.extend(_turns(message, index))
    tool_config = body.get("toolConfig") or {}
    specs = [entry.get("toolSpec") for entry in tool_config.get("tools") or () if isinstance(entry, dict)]
    tools = [_tool(spec) for spec in specs if spec is not None]
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise InvalidRequest("inferenceConfig.maxTokens must be an integer")
    return Prompt(turns, tools, max_tokens)


def _turns(message: object, index: int) -> list[Turn]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(content, list):
        raise InvalidRequest(f"messages[{index}] must be an object with role user|assistant and a content array")
    role = ROLES[message["role"]]
    return message_turns(role, (turn for block in content if (turn := _block(role, block)) is not None))


def _block(role: Role, block: object) -> Turn | None:
    """A content block's text or tool result; tool uses, images and documents carry no text that is counted."""
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("text"), str):
        return Turn(role, block["text"])
    if isinstance(block.get("toolResult"), dict):
        return Turn("tool", _tool_result_text(block["toolResult"]))
    return None


def _tool_result_text(result: dict[str, Any]) -> str:
    parts = [block.get("text", block.get("json")) for block in result.get("content") or () if isinstance(block, dict)]
    return " ".join(structured_text(part) for part in parts if part is not None)


def _tool(spec: object) -> Tool:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidRequest("each toolConfig.tools[].toolSpec must be an object with a 'name'")
    schema = (spec.get("inputSchema") or {}).get("json") or {}
    return Tool(spec["name"], schema)


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "inputTokens": reply.prompt_tokens,
        "outputTokens": reply.completion_tokens,
        "totalTokens": reply.total_tokens,
    }


def _content(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_call is None:
        return [{"text": reply.text}]
    return [{"toolUse": {"toolUseId": TOOL_USE_ID, "name": reply.tool_call.name, "input": reply.tool_call.arguments}}]


def _headers(call: Call) -> dict[str, str]:
    return {"x-amzn-RequestId": f"sim-{call.sequence:08d}-0000-0000-0000-000000000000"}


async def converse(call: Call) -> Response:
    reply = respond(prompt_of(call.body))
    body = {
        "output": {"message": {"role": "assistant", "content": _content(reply)}},
        "stopReason": STOP_REASONS[reply.finish],
        "usage": _usage(reply),
        "metrics": {"latencyMs": call.elapsed_ms()},
    }
    return JSONResponse(body, headers=_headers(call))


async def converse_stream(call: Call) -> Response:
    reply = respond(prompt_of(call.body))

    async def frames() -> AsyncIterator[bytes]:
        yield eventstream.event("messageStart", {"role": "assistant"})
        if reply.tool_call is not None:
            start = {"toolUse": {"toolUseId": TOOL_USE_ID, "name": reply.tool_call.name}}
            yield eventstream.event("contentBlockStart", {"contentBlockIndex": 0, "start": start})
            delta = {"toolUse": {"input": reply.tool_call.arguments_json()}}
            yield eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta})
        else:
            for text in word_deltas(reply.text):
                yield eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})
        yield eventstream.event("contentBlockStop", {"contentBlockIndex": 0})
        yield eventstream.event("messageStop", {"stopReason": STOP_REASONS[reply.finish]})
        metadata = {"usage": _usage(reply), "metrics": {"latencyMs": call.elapsed_ms()}}
        yield eventstream.event("metadata", metadata)

    return StreamingResponse(frames(), media_type="application/vnd.amazon.eventstream", headers=_headers(call))


async def _titan(call: Call) -> Response:
    text = require(call.body, "inputText", str)
    tokens = count_words(text)
    body = {"embedding": embedding(text, dimensions_of(call.body.get("dimensions"))), "inputTextTokenCount": tokens}
    return JSONResponse(body, headers={**_headers(call), "X-Amzn-Bedrock-Input-Token-Count": str(tokens)})


async def _cohere(call: Call) -> Response:
    texts = require(call.body, "texts", list)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise InvalidRequest("'texts' must be a non-empty array of strings")
    dimensions = dimensions_of(call.body.get("output_dimension"))
    body = {
        "embeddings": [embedding(text, dimensions) for text in texts],
        "id": f"sim-{call.sequence}",
        "response_type": "embeddings_floats",
        "texts": texts,
    }
    tokens = sum(count_words(text) for text in texts)
    return JSONResponse(body, headers={**_headers(call), "X-Amzn-Bedrock-Input-Token-Count": str(tokens)})


# InvokeModel bodies are model-native; the key that marks each family's shape picks its handler.
INVOKE_BODIES: dict[str, Callable[[Call], Awaitable[Response]]] = {"inputText": _titan, "texts": _cohere}


async def invoke(call: Call) -> Response:
    handler = next((handler for key, handler in INVOKE_BODIES.items() if key in call.body), None)
    if handler is None:
        shapes = ", ".join(repr(key) for key in INVOKE_BODIES)
        raise InvalidRequest(f"the simulator's InvokeModel serves embeddings: the body needs one of {shapes}")
    return await handler(call)


def _model_id(request: Request, _: dict[str, Any]) -> str:
    model_id = str(request.path_params["model_id"])
    if not servable(request, model_id):  # a custom model ARN no completed customization job made
        raise InvalidRequest("The provided model identifier is invalid.")
    return model_id


def routes() -> list[BaseRoute]:
    operations = [("converse", converse), ("converse-stream", converse_stream), ("invoke", invoke)]
    return [
        Route(f"/model/{{model_id:path}}/{name}", endpoint(DIALECT, name, handler, _model_id), methods=["POST"])
        for name, handler in operations
    ]
