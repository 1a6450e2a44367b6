"""OpenAI chat request → Vertex AI Gemini `generateContent` body (also the `streamGenerateContent?alt=sse` body).

Rules the mapping follows:

- `system` and `developer` messages, wherever they sit, become `systemInstruction.parts`, in order.
- Roles: user → `user`, assistant → `model`; a tool message becomes a `functionResponse` part in a user turn, named
  after the earlier tool call with the same id (Gemini has no call ids). Consecutive turns of one role merge, so the
  responses to one model turn's calls come back together in the next user turn, as Gemini requires.
- Blank text is dropped, because Vertex refuses an empty text part; a turn left with no parts is dropped too.
- Images: `data:` URLs → `inlineData`; `gs://` and `https://` → `fileData` (MIME type from the extension,
  image/jpeg when it says nothing); plain `http://` is refused. Files (`file_data`) and `input_audio` → `inlineData`.
- Gemini 3 refuses a history whose first function call in a model turn lacks its thought signature. Signatures come
  back from `gemini_to_chat` as `extra_content.google.thought_signature` on the tool call (as Google's own OpenAI
  endpoint does) and are restored here; a call without one (written by another model) gets Google's documented
  placeholder, `skip_thought_signature_validator`.
- `response_format`: json_object → `responseMimeType: application/json`; json_schema adds `responseSchema`, converted
  to Vertex's schema subset by `gemini_schema` (which documents what it strips). Tool parameters are converted the
  same way; a parameterless tool omits `parameters`, because Vertex refuses an OBJECT with no properties.
- `tool_choice`: none → NONE (the tools stay declared), auto → AUTO, required → ANY, a named function → ANY with
  `allowedFunctionNames`.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field

from providers.translate import openai_request as req
from providers.translate.gemini_schema import to_gemini_schema
from providers.translate.openai_request import JsonObject, Part

VENDOR = "Vertex AI Gemini"
THOUGHT_SIGNATURE_PLACEHOLDER = "skip_thought_signature_validator"
_AUDIO_MIME_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


@dataclass
class _Conversation:
    system: list[JsonObject] = field(default_factory=list)
    contents: list[JsonObject] = field(default_factory=list)
    call_names: dict[str, str] = field(default_factory=dict)


def chat_to_gemini(request: JsonObject) -> JsonObject:
    conversation = _Conversation()
    for index, message in enumerate(req.messages(request)):
        param = f"messages[{index}]"
        role = message.get("role")
        reader = _ROLE_READERS.get(role) if isinstance(role, str) else None
        if reader is None:
            raise req.fail(f"Unsupported message role {role!r}.", f"{param}.role")
        reader(conversation, message, param)
    if not conversation.contents:
        raise req.fail("Gemini needs at least one user or assistant message with content.", "messages")
    _sign_first_calls(conversation.contents)
    body: JsonObject = {"contents": conversation.contents}
    if conversation.system:
        body["systemInstruction"] = {"parts": conversation.system}
    generation_config = _generation_config(request)
    if generation_config:
        body["generationConfig"] = generation_config
    tools = req.function_tools(request)
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in tools]}]
    choice = req.tool_choice(request, tools)
    if choice is not None and tools:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    return body


def _text_parts(text: str) -> list[JsonObject]:
    return [{"text": text}] if text.strip() else []


def _read_system(conversation: _Conversation, message: JsonObject, param: str) -> None:
    conversation.system.extend(_text_parts(req.text_only(message, param, VENDOR)))


def _read_user(conversation: _Conversation, message: JsonObject, param: str) -> None:
    parts: list[JsonObject] = []
    for part in req.content_parts(message, param):
        builder = _USER_PARTS.get(part.kind)
        if builder is None:
            raise req.unsupported(part, VENDOR, "user")
        parts.extend(builder(part))
    req.append_turn(conversation.contents, "user", parts, "parts")


def _read_assistant(conversation: _Conversation, message: JsonObject, param: str) -> None:
    parts: list[JsonObject] = []
    for part in req.content_parts(message, param):
        if part.kind not in ("text", "refusal"):
            raise req.unsupported(part, VENDOR, "assistant")
        parts.extend(_text_parts(req.part_text(part)))
    for call in req.tool_calls(message, param):
        conversation.call_names[call.id] = call.name
        function_call: JsonObject = {"functionCall": {"name": call.name, "args": call.arguments}}
        signature = call.extra_content.get("google", {}).get("thought_signature")
        if isinstance(signature, str):
            function_call["thoughtSignature"] = signature
        parts.append(function_call)
    req.append_turn(conversation.contents, "model", parts, "parts")


def _read_tool(conversation: _Conversation, message: JsonObject, param: str) -> None:
    call_id = req.tool_call_id(message, param)
    name = conversation.call_names.get(call_id)
    if name is None:
        raise req.fail(f"No earlier assistant tool call has id '{call_id}'.", f"{param}.tool_call_id")
    response = {"name": name, "response": {"content": req.text_only(message, param, VENDOR)}}
    req.append_turn(conversation.contents, "user", [{"functionResponse": response}], "parts")


_ROLE_READERS: dict[str, Callable[[_Conversation, JsonObject, str], None]] = {
    "system": _read_system,
    "developer": _read_system,
    "user": _read_user,
    "assistant": _read_assistant,
    "tool": _read_tool,
}


def _sign_first_calls(contents: list[JsonObject]) -> None:
    for turn in contents:
        calls = [part for part in turn["parts"] if "functionCall" in part]
        if turn["role"] == "model" and calls:
            calls[0].setdefault("thoughtSignature", THOUGHT_SIGNATURE_PLACEHOLDER)


def _user_text(part: Part) -> list[JsonObject]:
    return _text_parts(req.part_text(part))


def _user_image(part: Part) -> list[JsonObject]:
    url, param = req.image_url(part)
    scheme = req.url_scheme(url)
    if scheme == "data":
        data = req.data_url(url, param)
        return [{"inlineData": {"mimeType": data.mime_type, "data": data.data}}]
    if scheme in ("gs", "https"):
        mime_type = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
        return [{"fileData": {"mimeType": mime_type, "fileUri": url}}]
    raise req.fail(f"Gemini reads images from data:, gs:// or https:// URLs, not {scheme}:.", param)


def _user_file(part: Part) -> list[JsonObject]:
    data, _ = req.file_data(part)
    return [{"inlineData": {"mimeType": data.mime_type, "data": data.data}}]


def _user_audio(part: Part) -> list[JsonObject]:
    audio = part.body.get("input_audio")
    param = f"{part.param}.input_audio"
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise req.fail("An input_audio part needs base64 'input_audio.data'.", param)
    mime_type = _AUDIO_MIME_TYPES.get(audio.get("format", ""))
    if mime_type is None:
        raise req.fail("input_audio.format must be 'wav' or 'mp3'.", f"{param}.format")
    return [{"inlineData": {"mimeType": mime_type, "data": audio["data"]}}]


_USER_PARTS: dict[str, Callable[[Part], list[JsonObject]]] = {
    "text": _user_text,
    "image_url": _user_image,
    "file": _user_file,
    "input_audio": _user_audio,
}


def _generation_config(request: JsonObject) -> JsonObject:
    config = {
        "maxOutputTokens": req.max_tokens(request),
        "temperature": req.number(request, "temperature"),
        "topP": req.number(request, "top_p"),
        "stopSequences": req.stop_sequences(request),
        "candidateCount": req.choice_count(request) if request.get("n") is not None else None,
        "seed": req.number(request, "seed"),
        "presencePenalty": req.number(request, "presence_penalty"),
        "frequencyPenalty": req.number(request, "frequency_penalty"),
    }
    present: JsonObject = {key: value for key, value in config.items() if value is not None}
    response_format = req.response_format(request)
    if response_format is not None:
        present["responseMimeType"] = "application/json"
        if response_format.schema is not None:
            schema_param = "response_format.json_schema.schema"
            present["responseSchema"] = to_gemini_schema(response_format.schema, schema_param)
    return present


def _declaration(tool: req.FunctionTool) -> JsonObject:
    declaration: JsonObject = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    parameters = to_gemini_schema(tool.parameters, f"{tool.param}.function.parameters")
    if parameters.get("properties") or parameters.get("type") not in ("OBJECT", None):
        declaration["parameters"] = parameters
    return declaration


_CALLING_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY", "function": "ANY"}


def _calling_config(choice: req.ToolChoice) -> JsonObject:
    config: JsonObject = {"mode": _CALLING_MODES[choice.mode]}
    if choice.name is not None:
        config["allowedFunctionNames"] = [choice.name]
    return config
