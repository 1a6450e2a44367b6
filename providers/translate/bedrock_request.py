"""OpenAI chat request → Bedrock Converse request body (POST /model/{modelId}/converse; the model id is the URL's).

Rules the mapping follows, each forced by Converse:

- `system` and `developer` messages, wherever they sit, become the top-level `system` blocks, in order.
- Converse requires user/assistant alternation: consecutive messages of one role merge into one message, and tool
  results (user turns carrying `toolResult` blocks) merge with the tool results and user text around them.
- Blank text is dropped, because Converse refuses a blank text block; a message left with no blocks is dropped too.
- Images and documents must be inline (`data:` URLs) or in S3 (`s3://`): Bedrock does not fetch http(s) URLs.
- `tool_choice: "none"` withholds the tools (Converse has no "none"), except when the history holds toolUse or
  toolResult blocks: Converse then refuses a request without `toolConfig`, so the tools stay declared, without a
  `toolChoice`, and the model may still call one. With no tools at all, history tools are declared by name with an
  open schema.
- `response_format` (json_object / json_schema) becomes a system instruction, because Converse's native
  `outputConfig.textFormat` is served by some models only and refused by the rest. A caller that knows the model
  supports it passes `native_structured_output=True` to send the schema there instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from providers.translate import openai_request as req
from providers.translate.openai_request import JsonObject, Part

VENDOR = "Bedrock"

JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else: no prose, no Markdown code fences."
JSON_SCHEMA_INSTRUCTION = JSON_OBJECT_INSTRUCTION + " The object must conform to this JSON Schema:\n"

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
IMAGE_EXTENSIONS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# Converse document names allow letters, digits, single spaces, hyphens, parentheses and square brackets only.
_DOCUMENT_NAME_REFUSED = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")


def chat_to_converse(request: JsonObject, *, native_structured_output: bool = False) -> JsonObject:
    if req.choice_count(request) != 1:
        raise req.fail("Bedrock Converse returns one choice per request; 'n' must be 1.", "n")
    system: list[JsonObject] = []
    turns: list[JsonObject] = []
    for index, message in enumerate(req.messages(request)):
        param = f"messages[{index}]"
        role = message.get("role")
        reader = _ROLE_READERS.get(role) if isinstance(role, str) else None
        if reader is None:
            raise req.fail(f"Unsupported message role {role!r}.", f"{param}.role")
        reader(message, param, system, turns)
    if not turns:
        raise req.fail("Converse needs at least one user or assistant message with content.", "messages")
    body: JsonObject = {"messages": turns}
    _put(body, "outputConfig", _apply_response_format(request, system, native_structured_output))
    if system:
        body["system"] = system
    _put(body, "inferenceConfig", _inference_config(request))
    _put(body, "toolConfig", _tool_config(request, turns))
    return body


def _put(body: JsonObject, key: str, value: JsonObject | None) -> None:
    if value:
        body[key] = value


def _text_blocks(text: str) -> list[JsonObject]:
    return [{"text": text}] if text.strip() else []


def _read_system(message: JsonObject, param: str, system: list[JsonObject], turns: list[JsonObject]) -> None:
    system.extend(_text_blocks(req.text_only(message, param, VENDOR)))


def _read_user(message: JsonObject, param: str, system: list[JsonObject], turns: list[JsonObject]) -> None:
    blocks: list[JsonObject] = []
    for part in req.content_parts(message, param):
        builder = _USER_PARTS.get(part.kind)
        if builder is None:
            raise req.unsupported(part, VENDOR, "user")
        blocks.extend(builder(part))
    req.append_turn(turns, "user", blocks, "content")


def _read_assistant(message: JsonObject, param: str, system: list[JsonObject], turns: list[JsonObject]) -> None:
    blocks: list[JsonObject] = []
    for part in req.content_parts(message, param):
        if part.kind not in ("text", "refusal"):
            raise req.unsupported(part, VENDOR, "assistant")
        blocks.extend(_text_blocks(req.part_text(part)))
    for call in req.tool_calls(message, param):
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}})
    req.append_turn(turns, "assistant", blocks, "content")


def _read_tool(message: JsonObject, param: str, system: list[JsonObject], turns: list[JsonObject]) -> None:
    text = req.text_only(message, param, VENDOR)
    # toolResult content must not hold a blank text block either; an empty result is sent as an empty list.
    result = {"toolUseId": req.tool_call_id(message, param), "content": _text_blocks(text)}
    req.append_turn(turns, "user", [{"toolResult": result}], "content")


_ROLE_READERS: dict[str, Callable[[JsonObject, str, list[JsonObject], list[JsonObject]], None]] = {
    "system": _read_system,
    "developer": _read_system,
    "user": _read_user,
    "assistant": _read_assistant,
    "tool": _read_tool,
}


def _user_text(part: Part) -> list[JsonObject]:
    return _text_blocks(req.part_text(part))


def _user_image(part: Part) -> list[JsonObject]:
    url, param = req.image_url(part)
    scheme = req.url_scheme(url)
    source: JsonObject
    if scheme == "data":
        data = req.data_url(url, param)
        image_format, source = IMAGE_FORMATS.get(data.mime_type), {"bytes": data.data}
    elif scheme == "s3":
        image_format, source = IMAGE_EXTENSIONS.get(url.rsplit(".", 1)[-1].lower()), {"s3Location": {"uri": url}}
    else:
        raise req.fail(
            f"Bedrock cannot fetch image URLs ({scheme}:); send the image inline as a base64 data: URL, or as s3://.",
            param,
        )
    if image_format is None:
        raise req.fail("Bedrock accepts png, jpeg, gif and webp images only.", param)
    return [{"image": {"format": image_format, "source": source}}]


def _user_file(part: Part) -> list[JsonObject]:
    data, filename = req.file_data(part)
    document_format = DOCUMENT_FORMATS.get(data.mime_type)
    if document_format is None:
        raise req.fail(
            f"Bedrock does not accept {data.mime_type} documents ({', '.join(DOCUMENT_FORMATS.values())}).",
            f"{part.param}.file.file_data",
        )
    name = " ".join(_DOCUMENT_NAME_REFUSED.sub("-", (filename or "").rsplit(".", 1)[0]).split()) or "document"
    return [{"document": {"format": document_format, "name": name[:200], "source": {"bytes": data.data}}}]


_USER_PARTS: dict[str, Callable[[Part], list[JsonObject]]] = {
    "text": _user_text,
    "image_url": _user_image,
    "file": _user_file,
}


def _inference_config(request: JsonObject) -> JsonObject:
    config = {
        "maxTokens": req.max_tokens(request),
        "temperature": req.number(request, "temperature"),
        "topP": req.number(request, "top_p"),
        "stopSequences": req.stop_sequences(request),
    }
    return {key: value for key, value in config.items() if value is not None}


def _tool_spec(tool: req.FunctionTool) -> JsonObject:
    spec: JsonObject = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
    if tool.description:  # Converse refuses an empty description.
        spec["description"] = tool.description
    return {"toolSpec": spec}


def _history_tool_names(turns: list[JsonObject]) -> list[str]:
    names = [block["toolUse"]["name"] for turn in turns for block in turn["content"] if "toolUse" in block]
    return list(dict.fromkeys(names))


def _history_has_tools(turns: list[JsonObject]) -> bool:
    return any("toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"])


def _history_tool_specs(turns: list[JsonObject]) -> list[JsonObject]:
    # Tool results whose calls were trimmed from the history still need some tool declared.
    names = _history_tool_names(turns) or ["unavailable_tool"]
    schema = {"type": "object"}
    return [{"toolSpec": {"name": name, "inputSchema": {"json": schema}}} for name in names]


_TOOL_CHOICES: dict[str, Callable[[req.ToolChoice], JsonObject]] = {
    "auto": lambda choice: {"auto": {}},
    "required": lambda choice: {"any": {}},
    "function": lambda choice: {"tool": {"name": choice.name}},
}


def _tool_config(request: JsonObject, turns: list[JsonObject]) -> JsonObject | None:
    tools = req.function_tools(request)
    choice = req.tool_choice(request, tools)
    specs = [_tool_spec(tool) for tool in tools]
    needed_by_history = _history_has_tools(turns)
    if not needed_by_history and (not specs or (choice and choice.mode == "none")):
        return None
    config: JsonObject = {"tools": specs or _history_tool_specs(turns)}
    to_choice = _TOOL_CHOICES.get(choice.mode) if choice else None
    if to_choice is not None and choice is not None:
        config["toolChoice"] = to_choice(choice)
    return config


def _apply_response_format(request: JsonObject, system: list[JsonObject], native: bool) -> JsonObject | None:
    """Add the JSON instruction to `system`, or return the native `outputConfig` when asked to."""
    response_format = req.response_format(request)
    if response_format is None:
        return None
    schema = response_format.schema
    if schema is None:
        system.append({"text": JSON_OBJECT_INSTRUCTION})
        return None
    if not native:
        system.append({"text": JSON_SCHEMA_INSTRUCTION + json.dumps(schema, separators=(",", ":"))})
        return None
    json_schema: dict[str, Any] = {"schema": json.dumps(schema), "name": response_format.name or "response"}
    if response_format.description:
        json_schema["description"] = response_format.description
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": json_schema}}}
