"""Reading an OpenAI chat or embeddings request: validated views that name the offending field when they refuse.

Both vendor translations read requests through these helpers, so a malformed request fails the same way whichever
provider serves it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from providers.translate.errors import TranslationError

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Part:
    """One content part of a message, with the request path that names it in errors."""

    kind: str
    body: JsonObject
    param: str


@dataclass(frozen=True)
class DataUrl:
    mime_type: str
    data: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: JsonObject
    # Vendor data OpenAI has no field for, carried the way Google's own OpenAI endpoint does
    # (`extra_content.google.thought_signature`).
    extra_content: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: JsonObject
    param: str


@dataclass(frozen=True)
class ToolChoice:
    mode: Literal["none", "auto", "required", "function"]
    name: str | None = None


@dataclass(frozen=True)
class ResponseFormat:
    kind: Literal["json_object", "json_schema"]
    schema: JsonObject | None = None
    name: str | None = None
    description: str | None = None


def fail(message: str, param: str) -> TranslationError:
    return TranslationError(message, param=param)


def messages(request: JsonObject) -> list[JsonObject]:
    value = request.get("messages")
    if not isinstance(value, list) or not value:
        raise fail("'messages' must be a non-empty array of message objects.", "messages")
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise fail("Each message must be an object.", f"messages[{index}]")
    return value


def content_parts(message: JsonObject, param: str) -> list[Part]:
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [Part("text", {"type": "text", "text": content}, f"{param}.content")]
    if not isinstance(content, list):
        raise fail("'content' must be a string or an array of content parts.", f"{param}.content")
    parts = []
    for index, item in enumerate(content):
        part_param = f"{param}.content[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise fail("Each content part must be an object with a string 'type'.", part_param)
        parts.append(Part(item["type"], item, part_param))
    return parts


def part_text(part: Part) -> str:
    key = "refusal" if part.kind == "refusal" else "text"
    value = part.body.get(key)
    if not isinstance(value, str):
        raise fail(f"A '{part.kind}' content part needs a string '{key}'.", f"{part.param}.{key}")
    return value


def unsupported(part: Part, vendor: str, role: str) -> TranslationError:
    return fail(f"{vendor} does not accept '{part.kind}' content parts in {role} messages.", f"{part.param}.type")


def text_only(message: JsonObject, param: str, vendor: str) -> str:
    """The text of a message whose role carries only text (system, developer, tool)."""
    texts = []
    for part in content_parts(message, param):
        if part.kind != "text":
            raise unsupported(part, vendor, str(message.get("role")))
        texts.append(part_text(part))
    return "".join(texts)


def image_url(part: Part) -> tuple[str, str]:
    """The URL of an image_url part and the param naming it."""
    param = f"{part.param}.image_url"
    value = part.body.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise fail("An image_url part needs 'image_url.url'.", param)
    return url, param


def url_scheme(url: str) -> str:
    return url.partition(":")[0].lower()


def data_url(url: str, param: str) -> DataUrl:
    header, comma, data = url.removeprefix("data:").partition(",")
    media = header.split(";")
    if not comma or media[-1] != "base64" or not media[0]:
        raise fail("A data: URL must be 'data:<mime type>;base64,<data>'.", param)
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise fail(f"The data: URL is not valid base64 ({error}).", param) from error
    return DataUrl(media[0].lower(), data)


def file_data(part: Part) -> tuple[DataUrl, str | None]:
    """The inline bytes of a `file` part, and its filename; files by id must be resolved by the caller first."""
    body = part.body.get("file")
    param = f"{part.param}.file"
    if not isinstance(body, dict) or not isinstance(body.get("file_data"), str):
        raise fail("A file part must carry the file inline as 'file.file_data' (a base64 data: URL).", param)
    filename = body.get("filename")
    return data_url(body["file_data"], f"{param}.file_data"), filename if isinstance(filename, str) else None


def tool_calls(message: JsonObject, param: str) -> list[ToolCall]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise fail("'tool_calls' must be an array.", f"{param}.tool_calls")
    return [_tool_call(call, f"{param}.tool_calls[{index}]") for index, call in enumerate(calls)]


def _tool_call(call: Any, param: str) -> ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise fail("A tool call needs 'function.name'.", f"{param}.function.name")
    if not isinstance(call.get("id"), str):
        raise fail("A tool call needs a string 'id'.", f"{param}.id")
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, json.JSONDecodeError) as error:
        raise fail(
            "'function.arguments' must be a JSON object encoded as a string.", f"{param}.function.arguments"
        ) from error
    if not isinstance(arguments, dict):
        raise fail("'function.arguments' must encode a JSON object.", f"{param}.function.arguments")
    extra = call.get("extra_content")
    return ToolCall(call["id"], function["name"], arguments, extra if isinstance(extra, dict) else {})


def tool_call_id(message: JsonObject, param: str) -> str:
    value = message.get("tool_call_id")
    if not isinstance(value, str) or not value:
        raise fail("A tool message needs the 'tool_call_id' it answers.", f"{param}.tool_call_id")
    return value


def function_tools(request: JsonObject) -> list[FunctionTool]:
    tools = request.get("tools") or []
    if not isinstance(tools, list):
        raise fail("'tools' must be an array.", "tools")
    return [_function_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)]


def _function_tool(tool: Any, param: str) -> FunctionTool:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise fail("Only tools of type 'function' can be translated for this provider.", f"{param}.type")
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise fail("A function tool needs 'function.name'.", f"{param}.function.name")
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise fail("'function.parameters' must be a JSON Schema object.", f"{param}.function.parameters")
    description = function.get("description")
    return FunctionTool(function["name"], description if isinstance(description, str) else None, parameters, param)


_TOOL_CHOICE_MODES: dict[str, Literal["none", "auto", "required"]] = {
    "none": "none",
    "auto": "auto",
    "required": "required",
}


def tool_choice(request: JsonObject, tools: list[FunctionTool]) -> ToolChoice | None:
    value = request.get("tool_choice")
    if value is None:
        return None
    choice = _tool_choice(value)
    if choice.mode in ("required", "function") and not tools:
        raise fail(f"tool_choice '{choice.mode}' needs 'tools'.", "tool_choice")
    if choice.mode == "function" and choice.name not in {tool.name for tool in tools}:
        raise fail(f"tool_choice names '{choice.name}', which is not among 'tools'.", "tool_choice.function.name")
    return choice


def _tool_choice(value: Any) -> ToolChoice:
    if isinstance(value, str) and value in _TOOL_CHOICE_MODES:
        return ToolChoice(_TOOL_CHOICE_MODES[value])
    function = value.get("function") if isinstance(value, dict) and value.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return ToolChoice("function", function["name"])
    raise fail("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', ...}.", "tool_choice")


def response_format(request: JsonObject) -> ResponseFormat | None:
    value = request.get("response_format")
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema" or not isinstance(value, dict):
        raise fail("response_format.type must be 'text', 'json_object' or 'json_schema'.", "response_format.type")
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise fail("response_format.json_schema.schema must be a JSON Schema object.", "response_format.json_schema")
    return ResponseFormat("json_schema", spec.get("schema"), spec.get("name"), spec.get("description"))


def max_tokens(request: JsonObject) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise fail(f"'{key}' must be a positive integer.", key)
            return value
    return None


def number(request: JsonObject, key: str) -> float | None:
    value = request.get(key)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise fail(f"'{key}' must be a number.", key)
    return value


def stop_sequences(request: JsonObject) -> list[str] | None:
    value = request.get("stop")
    if value is None:
        return None
    sequences = [value] if isinstance(value, str) else value
    if not isinstance(sequences, list) or not all(isinstance(item, str) for item in sequences):
        raise fail("'stop' must be a string or an array of strings.", "stop")
    return sequences or None


def choice_count(request: JsonObject) -> int:
    value = request.get("n", 1)
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise fail("'n' must be a positive integer.", "n")
    return value


def append_turn(turns: list[JsonObject], role: str, blocks: list[JsonObject], key: str) -> None:
    """Add a turn, folding it into the previous one when the role repeats; a turn with no blocks is dropped."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(blocks)
    else:
        turns.append({"role": role, key: blocks})


def embedding_inputs(request: JsonObject) -> list[str]:
    value = request.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise fail(
            "'input' must be a string or a non-empty array of strings (token arrays are not supported).", "input"
        )
    return texts


def dimensions(request: JsonObject) -> int | None:
    value = request.get("dimensions")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise fail("'dimensions' must be a positive integer.", "dimensions")
    return value


def encoding_format(request: JsonObject) -> Literal["float", "base64"]:
    value = request.get("encoding_format", "float")
    if value not in ("float", "base64", None):
        raise fail("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return "base64" if value == "base64" else "float"
