"""OpenAI's Responses API on top of chat completions, so every provider can serve it.

Portico keeps a response's input and output items itself, which is what makes `previous_response_id` work on
Bedrock and Vertex as well: the earlier turn is replayed as chat messages. Pure functions, dicts in and out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from portico.errors import InvalidRequest
from portico.ids import new_id

Json = dict[str, Any]

# Responses request fields that map one to one onto chat request fields.
_SAME = ("model", "temperature", "top_p", "parallel_tool_calls", "user", "metadata")


def _part(part: Any, where: str) -> Json:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url") or part.get("file_id", "")}}
    raise InvalidRequest(f"Unsupported content part type {kind!r}.", param=f"{where}.type")


def _content(content: Any, where: str) -> str | list[Json]:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]
    raise InvalidRequest("Message content must be a string or a list of parts.", param=where)


def _message(item: Json, where: str) -> Json:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(f"Unsupported role {role!r}.", param=f"{where}.role")
    return {"role": role, "content": _content(item.get("content"), f"{where}.content")}


def _function_call(item: Json) -> Json:
    call = {
        "id": item.get("call_id"),
        "type": "function",
        "function": {"name": item.get("name"), "arguments": item.get("arguments", "{}")},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _function_output(item: Json) -> Json:
    output = item.get("output")
    return {
        "role": "tool",
        "tool_call_id": item.get("call_id"),
        "content": output if isinstance(output, str) else json.dumps(output),
    }


_ITEMS: dict[str, Callable[[Json, str], Json]] = {
    "message": _message,
    "function_call": lambda item, _: _function_call(item),
    "function_call_output": lambda item, _: _function_output(item),
}


def items_to_messages(items: list[Json], param: str = "input") -> list[Json]:
    """Responses items → chat messages; consecutive function calls merge into one assistant turn, as chat wants."""
    messages: list[Json] = []
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        convert = _ITEMS.get(kind)
        if convert is None:
            raise InvalidRequest(f"Unsupported input item type {kind!r}.", param=f"{param}[{index}].type")
        message = convert(item, f"{param}[{index}]")
        previous = messages[-1] if messages else None
        if message.get("tool_calls") and previous is not None and previous.get("tool_calls"):
            previous["tool_calls"].extend(message["tool_calls"])
        else:
            messages.append(message)
    return messages


def input_items(value: Any) -> list[Json]:
    """The request's `input` as items with ids, the form they are stored and listed in."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a string or a non-empty list of items.", param="input")
    stored = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidRequest("Each input item must be an object.", param="input")
        item = {"type": "message", **item}
        if item["type"] == "message" and isinstance(item.get("content"), str):
            item["content"] = [{"type": "input_text", "text": item["content"]}]
        stored.append(
            {
                "id": item.get("id") or new_id("msg_" if item["type"] == "message" else "item_"),
                "status": "completed",
                **item,
            }
        )
    return stored


def _tools(tools: Any) -> list[Json] | None:
    if not tools:
        return None
    converted = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidRequest("Only function tools are supported through Portico.", param=f"tools[{index}].type")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
        converted.append({"type": "function", "function": function})
    return converted


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def chat_request(request: Json, history: list[Json], items: list[Json]) -> Json:
    """The chat body for a Responses request: instructions, earlier turns, then this turn's input."""
    messages = [{"role": "system", "content": request["instructions"]}] if request.get("instructions") else []
    messages += history + items_to_messages(items)
    body: Json = {k: request[k] for k in _SAME if request.get(k) is not None}
    body["messages"] = messages
    if request.get("max_output_tokens") is not None:
        body["max_tokens"] = request["max_output_tokens"]
    if tools := _tools(request.get("tools")):
        body["tools"] = tools
        if request.get("tool_choice") is not None:
            body["tool_choice"] = _tool_choice(request["tool_choice"])
    text_format = (request.get("text") or {}).get("format") or {}
    if text_format.get("type") == "json_schema":
        schema = {k: text_format[k] for k in ("name", "schema", "strict", "description") if k in text_format}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif text_format.get("type") == "json_object":
        body["response_format"] = {"type": "json_object"}
    return body


def output_items(message: Json) -> list[Json]:
    items: list[Json] = []
    if message.get("content"):
        text = message["content"] if isinstance(message["content"], str) else json.dumps(message["content"])
        items.append(
            {
                "type": "message",
                "id": new_id("msg_"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        items.append(
            {
                "type": "function_call",
                "id": new_id("fc_"),
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments", "{}"),
                "status": "completed",
            }
        )
    return items


_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_object(request: Json, chat: Json, response_id: str | None = None) -> Json:
    choice = (chat.get("choices") or [{}])[0]
    usage = chat.get("usage") or {}
    reason = _INCOMPLETE.get(choice.get("finish_reason", ""))
    return {
        "id": response_id or new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if reason else "completed",
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": chat.get("model") or request.get("model"),
        "output": output_items(choice.get("message") or {}),
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "text": request.get("text") or {"format": {"type": "text"}},
        "metadata": request.get("metadata") or {},
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.get("completion_tokens", 0),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
