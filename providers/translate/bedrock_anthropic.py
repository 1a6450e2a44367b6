"""OpenAI chat ↔ Anthropic Messages as Bedrock's InvokeModel takes it (`anthropic_version: bedrock-2023-05-31`).

Batch inference (CreateModelInvocationJob) hands each record's `modelInput` to the model as an InvokeModel body, so
Claude models need Anthropic's own Messages body rather than Converse. The request is built from the Converse body
`bedrock_request.chat_to_converse` produces: that translation already settles the hard rules (system messages
gathered, role alternation, tool results merged, blank text dropped, response_format as a system instruction), and
the two formats differ only in how blocks are spelled. What Anthropic cannot take through InvokeModel is refused
with the field named: S3 images, and documents other than PDF.

Anthropic requires `max_tokens`; a request without one gets `DEFAULT_MAX_TOKENS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from providers.translate import openai_request as req
from providers.translate import openai_response as res
from providers.translate.bedrock_request import chat_to_converse
from providers.translate.bedrock_response import finish_reason
from providers.translate.openai_request import JsonObject

ANTHROPIC_VERSION = "bedrock-2023-05-31"
DEFAULT_MAX_TOKENS = 4096
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def chat_to_anthropic(request: JsonObject) -> JsonObject:
    converse = chat_to_converse(request)
    config = converse.get("inferenceConfig", {})
    body: JsonObject = {
        "anthropic_version": ANTHROPIC_VERSION,
        "max_tokens": config.get("maxTokens", DEFAULT_MAX_TOKENS),
        "messages": [_message(turn, index) for index, turn in enumerate(converse["messages"])],
    }
    if converse.get("system"):
        body["system"] = [{"type": "text", "text": block["text"]} for block in converse["system"]]
    for source, target in (("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop_sequences")):
        if source in config:
            body[target] = config[source]
    tool_config = converse.get("toolConfig")
    if tool_config:
        body["tools"] = [_tool(entry["toolSpec"]) for entry in tool_config["tools"]]
        choice = tool_config.get("toolChoice")
        if choice:
            body["tool_choice"] = _tool_choice(choice)
    return body


def _message(turn: JsonObject, index: int) -> JsonObject:
    param = f"messages[{index}]"
    return {"role": turn["role"], "content": [_block(block, param) for block in turn["content"]]}


def _block(block: JsonObject, param: str) -> JsonObject:
    for kind, convert in _BLOCKS.items():
        if kind in block:
            return convert(block[kind], param)
    raise req.fail(f"Anthropic models on Bedrock cannot take this content ({', '.join(block)}).", param)


def _text(text: str, param: str) -> JsonObject:
    return {"type": "text", "text": text}


def _image(image: JsonObject, param: str) -> JsonObject:
    source = image["source"]
    if "bytes" not in source:
        raise req.fail("Anthropic models on Bedrock take images inline only (a base64 data: URL), not s3://.", param)
    media_type = _IMAGE_TYPES[image["format"]]
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": source["bytes"]}}


def _document(document: JsonObject, param: str) -> JsonObject:
    if document["format"] != "pdf":
        raise req.fail(f"Anthropic models on Bedrock take PDF documents only, not {document['format']}.", param)
    source = {"type": "base64", "media_type": "application/pdf", "data": document["source"]["bytes"]}
    return {"type": "document", "source": source}


def _tool_use(use: JsonObject, param: str) -> JsonObject:
    return {"type": "tool_use", "id": use["toolUseId"], "name": use["name"], "input": use["input"]}


def _tool_result(result: JsonObject, param: str) -> JsonObject:
    content = [{"type": "text", "text": block["text"]} for block in result["content"]]
    return {"type": "tool_result", "tool_use_id": result["toolUseId"], "content": content}


_BLOCKS: dict[str, Callable[[Any, str], JsonObject]] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "toolUse": _tool_use,
    "toolResult": _tool_result,
}


def _tool(spec: JsonObject) -> JsonObject:
    tool: JsonObject = {"name": spec["name"], "input_schema": spec["inputSchema"]["json"]}
    if spec.get("description"):
        tool["description"] = spec["description"]
    return tool


def _tool_choice(choice: JsonObject) -> JsonObject:
    if "tool" in choice:
        return {"type": "tool", "name": choice["tool"]["name"]}
    return {"type": "any" if "any" in choice else "auto"}


def anthropic_to_chat(output: JsonObject, *, model: str, completion_id: str, created: int) -> JsonObject:
    blocks = [block for block in output.get("content") or [] if isinstance(block, dict)]
    text = "".join(block["text"] for block in blocks if block.get("type") == "text")
    calls = [
        res.tool_call(block["id"], block["name"], json.dumps(block.get("input", {}), ensure_ascii=False))
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    choice = res.choice(0, text, calls, finish_reason(output.get("stop_reason")))
    usage = output.get("usage")
    return res.completion(
        completion_id=completion_id,
        created=created,
        model=model,
        choices=[choice],
        usage=_usage(usage) if isinstance(usage, dict) else None,
    )


def _usage(usage: JsonObject) -> JsonObject:
    # input_tokens counts only the uncached input; OpenAI's prompt_tokens includes the cached part.
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + cache_write
    cached = cache_read if "cache_read_input_tokens" in usage else None
    return res.usage(prompt, int(usage.get("output_tokens") or 0), cached_tokens=cached)
