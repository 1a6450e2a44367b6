"""Shared pieces of the simulator tests: credentials, one neutral conversation written in each vendor's wire format,
the running simulators and the HTTP client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers.simulators.app import running_simulator

OPENAI_AUTH = {"Authorization": "Bearer sk-sim"}
BEDROCK_AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00",
    "X-Amz-Date": "20250101T000000Z",
}
VERTEX_AUTH = {"Authorization": "Bearer ya29.sim"}
VERTEX_MODELS = "/v1/projects/demo/locations/us-central1/publishers/google/models"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "threshold": {"type": "number"},
        "metric": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "extra": {"type": "object"},
        "note": {"type": "string"},
    },
    "required": ["city", "days", "threshold", "metric", "tags", "extra"],
}
WEATHER_ARGS = {"city": "sim", "days": 1, "threshold": 1.5, "metric": True, "tags": [], "extra": {}}
# One client for all the simulator test modules: building an httpx client costs tens of milliseconds (its TLS
# context). It is shared, so it closes at the end of the session, not of the first module to finish.
HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(scope="module", name="urls")
def urls_fixture() -> Iterator[dict[str, str]]:
    with running_simulator("openai") as o, running_simulator("bedrock") as b, running_simulator("vertex") as v:
        yield {"openai": o, "bedrock": b, "vertex": v}


# --- a neutral conversation, written in each vendor's wire format (what Portico's adapters do for real) -----------


@dataclass(frozen=True)
class Conversation:
    system: str
    user: str
    tools: bool = False
    tool_result: str | None = None  # set: the assistant called get_weather and this is the tool's answer


@dataclass(frozen=True)
class Outcome:
    text: str | None
    tool: tuple[str, dict[str, Any]] | None
    usage: tuple[int, int, int]


def openai_body(c: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": c.system}, {"role": "user", "content": c.user}]
    if c.tool_result is not None:
        call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "x"}'}}
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]}]
        messages += [{"role": "tool", "tool_call_id": "call_1", "content": c.tool_result}]
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": messages}
    if c.tools:
        functions = [("get_weather", WEATHER_SCHEMA), ("other", {"type": "object", "required": ["q"]})]
        body["tools"] = [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in functions]
    return body


def bedrock_body(c: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": c.user}]}]
    if c.tool_result is not None:
        use = {"toolUseId": "t1", "name": "get_weather", "input": {"city": "x"}}
        messages += [{"role": "assistant", "content": [{"toolUse": use}]}]
        result = {"toolUseId": "t1", "content": [{"text": c.tool_result}]}
        messages += [{"role": "user", "content": [{"toolResult": result}]}]
    body: dict[str, Any] = {"system": [{"text": c.system}], "messages": messages}
    if c.tools:
        specs = [("get_weather", WEATHER_SCHEMA), ("other", {"type": "object", "required": ["q"]})]
        body["toolConfig"] = {"tools": [{"toolSpec": {"name": n, "inputSchema": {"json": s}}} for n, s in specs]}
    return body


def vertex_body(c: Conversation) -> dict[str, Any]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": c.user}]}]
    if c.tool_result is not None:
        contents += [{"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "x"}}}]}]
        answer = {"name": "get_weather", "response": {"content": c.tool_result}}
        contents += [{"role": "user", "parts": [{"functionResponse": answer}]}]
    body: dict[str, Any] = {"systemInstruction": {"parts": [{"text": c.system}]}, "contents": contents}
    if c.tools:
        weather = {"name": "get_weather", "parameters": {**WEATHER_SCHEMA, "type": "OBJECT"}}
        body["tools"] = [{"functionDeclarations": [weather, {"name": "other", "parameters": {"required": ["q"]}}]}]
    return body


def openai_outcome(body: dict[str, Any]) -> Outcome:
    choice, usage = body["choices"][0], body["usage"]
    calls = choice["message"].get("tool_calls")
    tool = (calls[0]["function"]["name"], json.loads(calls[0]["function"]["arguments"])) if calls else None
    return Outcome(
        choice["message"]["content"], tool, (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])
    )


def bedrock_outcome(body: dict[str, Any]) -> Outcome:
    block, usage = body["output"]["message"]["content"][0], body["usage"]
    tool = (block["toolUse"]["name"], block["toolUse"]["input"]) if "toolUse" in block else None
    return Outcome(block.get("text"), tool, (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]))


def vertex_outcome(body: dict[str, Any]) -> Outcome:
    part, usage = body["candidates"][0]["content"]["parts"][0], body["usageMetadata"]
    tool = (part["functionCall"]["name"], part["functionCall"]["args"]) if "functionCall" in part else None
    counts = (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"])
    return Outcome(part.get("text"), tool, counts)


@dataclass(frozen=True)
class Vendor:
    auth: dict[str, str]
    chat_path: str
    body: Callable[[Conversation], dict[str, Any]]
    outcome: Callable[[dict[str, Any]], Outcome]
    error_message: Callable[[dict[str, Any]], str]


VENDORS = {
    "openai": Vendor(OPENAI_AUTH, "/v1/chat/completions", openai_body, openai_outcome, lambda e: e["error"]["message"]),
    "bedrock": Vendor(
        BEDROCK_AUTH, "/model/anthropic.claude-3-haiku/converse", bedrock_body, bedrock_outcome, lambda e: e["message"]
    ),
    "vertex": Vendor(
        VERTEX_AUTH,
        f"{VERTEX_MODELS}/gemini-2.0-flash:generateContent",
        vertex_body,
        vertex_outcome,
        lambda e: e["error"]["message"],
    ),
}


def chat(urls: dict[str, str], kind: str, conversation: Conversation, **headers: str) -> httpx.Response:
    vendor = VENDORS[kind]
    return HTTP.post(
        urls[kind] + vendor.chat_path, json=vendor.body(conversation), headers={**vendor.auth, **headers}, timeout=10
    )
