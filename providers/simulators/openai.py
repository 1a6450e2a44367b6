"""OpenAI inference API simulator: chat completions (JSON and SSE), legacy completions, embeddings. Models are in
`openai_models`; moderations, images and audio in `openai_media`.

Wire format as api.openai.com sends it: `chat.completion` / `chat.completion.chunk` objects, `data: [DONE]` at the
end of a stream, a trailing usage chunk with empty `choices` when `stream_options.include_usage` is set, and errors
as ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from providers.simulators.behaviour import (
    Finish,
    InvalidRequest,
    Prompt,
    Reply,
    Role,
    Tool,
    ToolCall,
    Turn,
    complete,
    count_words,
    dimensions_of,
    embedding,
    respond,
    word_deltas,
)
from providers.simulators.edge import Call, Dialect, FastJSONResponse, endpoint, has_bearer, require, sse

FINGERPRINT = "fp_portico_sim"
FINISH_REASONS = {Finish.STOP: "stop", Finish.TOOL_CALL: "tool_calls", Finish.LENGTH: "length"}
ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
# status -> (error.type, error.code), as OpenAI labels them.
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


def error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Response:
    kind, default_code = ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}
    return JSONResponse(body, status_code=status)


DIALECT = Dialect(
    error=error,
    authorized=has_bearer,
    unauthorized_status=401,
    unauthorized_message="You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
)


def prompt_of(body: dict[str, Any]) -> Prompt:
    messages = require(body, "messages", list)
    turns = [_turn(message, index) for index, message in enumerate(messages)]
    tools = [_tool(entry) for entry in body.get("tools") or () if isinstance(entry, dict) and "function" in entry]
    return Prompt(turns, tools, _max_tokens(body, "max_completion_tokens", "max_tokens"))


def _turn(message: object, index: int) -> Turn:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise InvalidRequest(f"messages[{index}] must be an object with a role in {sorted(ROLES)}")
    return Turn(ROLES[message["role"]], _text(message.get("content")))


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool(entry: dict[str, Any]) -> Tool:
    function = entry["function"]
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest("each tool's 'function' must be an object with a 'name'")
    return Tool(function["name"], function.get("parameters") or {})


def _max_tokens(body: dict[str, Any], *names: str) -> int | None:
    value = next((body[name] for name in names if body.get(name) is not None), None)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"'{names[-1]}' must be an integer")
    return value


def _tool_call(call: ToolCall, index: int = 0) -> dict[str, Any]:
    return {"id": f"call_sim_{index}", "type": "function", "function": {"name": call.name, "arguments": ""}}


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
    }


def _message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_call is not None:
        message["content"] = None
        entry = _tool_call(reply.tool_call)
        entry["function"]["arguments"] = reply.tool_call.arguments_json()
        message["tool_calls"] = [entry]
    return message


async def chat_completions(call: Call) -> Response:
    reply = respond(prompt_of(call.body))
    head = {"id": f"chatcmpl-sim-{call.sequence}", "created": int(time.time()), "model": call.model}
    if call.body.get("stream"):
        options = call.body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        return sse(_chat_chunks(head, reply, include_usage), done=True, headers=_request_id(call))
    choice = {"index": 0, "message": _message(reply), "logprobs": None, "finish_reason": FINISH_REASONS[reply.finish]}
    body = {**head, "object": "chat.completion", "choices": [choice], "usage": _usage(reply)}
    return FastJSONResponse({**body, "system_fingerprint": FINGERPRINT}, headers=_request_id(call))


def _chat_chunks(head: dict[str, Any], reply: Reply, include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {**head, "object": "chat.completion.chunk", "system_fingerprint": FINGERPRINT}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

    if reply.tool_call is not None:
        yield chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **_tool_call(reply.tool_call)}]})
        arguments = {"index": 0, "function": {"arguments": reply.tool_call.arguments_json()}}
        yield chunk({"tool_calls": [arguments]})
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for delta in word_deltas(reply.text):
            yield chunk({"content": delta})
    yield chunk({}, FINISH_REASONS[reply.finish])
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(reply)}


async def completions(call: Call) -> Response:
    prompts = _strings(call.body.get("prompt"), "prompt")
    max_tokens = _max_tokens(call.body, "max_tokens")
    replies = [complete(text, max_tokens) for text in prompts]
    head = {"id": f"cmpl-sim-{call.sequence}", "object": "text_completion", "created": int(time.time())}
    head["model"] = call.model
    if call.body.get("stream"):
        return sse(_completion_chunks(head, replies), done=True, headers=_request_id(call))
    choices = [
        {"text": reply.text, "index": i, "logprobs": None, "finish_reason": FINISH_REASONS[reply.finish]}
        for i, reply in enumerate(replies)
    ]
    prompt_tokens = sum(reply.prompt_tokens for reply in replies)
    completion_tokens = sum(reply.completion_tokens for reply in replies)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    usage["total_tokens"] = prompt_tokens + completion_tokens
    body = {**head, "choices": choices, "usage": usage}
    return FastJSONResponse(body, headers=_request_id(call))


def _completion_chunks(head: dict[str, Any], replies: list[Reply]) -> Iterator[dict[str, Any]]:
    for index, reply in enumerate(replies):
        for delta in word_deltas(reply.text):
            yield {**head, "choices": [{"text": delta, "index": index, "logprobs": None, "finish_reason": None}]}
        finish = FINISH_REASONS[reply.finish]
        yield {**head, "choices": [{"text": "", "index": index, "logprobs": None, "finish_reason": finish}]}


def _strings(value: object, name: str) -> list[str]:
    """A string or a non-empty array of strings; token arrays stand for their tokens, one word each."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(isinstance(item, int) for item in value):
            return [" ".join(map(str, value))]
        if all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    raise InvalidRequest(f"'{name}' must be a string, an array of strings or token arrays, and not empty")


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


ENCODINGS: dict[str, Callable[[list[float]], object]] = {"float": lambda vector: vector, "base64": _base64_floats}


async def embeddings(call: Call) -> Response:
    texts = _strings(call.body.get("input"), "input")
    encoding = call.body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise InvalidRequest(f"'encoding_format' must be one of {sorted(ENCODINGS)}")
    dimensions = dimensions_of(call.body.get("dimensions"))
    data = [
        {"object": "embedding", "index": i, "embedding": ENCODINGS[encoding](embedding(text, dimensions))}
        for i, text in enumerate(texts)
    ]
    tokens = sum(count_words(text) for text in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    body = {"object": "list", "data": data, "model": call.model, "usage": usage}
    return FastJSONResponse(body, headers=_request_id(call))


def _request_id(call: Call) -> dict[str, str]:
    return {"x-request-id": f"req_sim_{call.sequence}"}


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/chat/completions", endpoint(DIALECT, "chat.completions", chat_completions), methods=["POST"]),
        Route("/v1/completions", endpoint(DIALECT, "completions", completions), methods=["POST"]),
        Route("/v1/embeddings", endpoint(DIALECT, "embeddings", embeddings), methods=["POST"]),
    ]
