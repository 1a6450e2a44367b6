"""Shared request builders and constants for the OpenAI ↔ Vertex AI Gemini translation tests."""

from __future__ import annotations

import base64
from typing import Any

MODEL = "gemini-2.5-flash"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
PDF = base64.b64encode(b"%PDF-1.7").decode()
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_PARAMETERS},
}
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "propertyOrdering": ["city"],
        "required": ["city"],
    },
}
WEATHER_TOOLS = [{"functionDeclarations": [WEATHER_DECLARATION]}]


def chat(*messages: Any, **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def turn(role: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": role, "parts": list(parts)}


def call(call_id: str, name: str, arguments: str, signature: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    if signature is not None:
        result["extra_content"] = {"google": {"thought_signature": signature}}
    return result


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


HI = user("Hi")
HI_TURN = turn("user", {"text": "Hi"})
