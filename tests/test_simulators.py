"""The OpenAI, Bedrock and Vertex inference simulators over real HTTP (uvicorn on 127.0.0.1).

Wire formats are checked with clients nobody here wrote where one exists (the openai SDK, boto3's bedrock-runtime
client, botocore's event-stream decoder) and with httpx otherwise. The shared deterministic behaviour is checked
across the three vendors: the same conversation must give the same reply, tool call and usage from each.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from portico.cli import build_parser
from providers.simulators.app import KINDS, running_simulator
from providers.simulators.controls import Clock
from tests.support.server import free_port

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
# One client for the module: building an httpx client costs tens of milliseconds (its TLS context).
HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
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


# --- the determinism contract, across the three vendors --------------------------------------------------------


@pytest.mark.parametrize("kind", list(VENDORS))
def test_chat_reply_is_the_collapsed_last_user_message(urls: dict[str, str], kind: str) -> None:
    long_question = "What   is\n\tthe weather " + "word " * 60
    response = chat(urls, kind, Conversation("You are terse.", long_question))
    assert response.status_code == 200, response.text
    outcome = VENDORS[kind].outcome(response.json())
    expected = "Simulated reply to: " + " ".join(long_question.split())[:200]
    assert outcome.text == expected
    assert outcome.tool is None
    prompt_words = 3 + 4 + 60
    assert outcome.usage == (prompt_words, len(expected.split()), prompt_words + len(expected.split()))


@pytest.mark.parametrize("kind", list(VENDORS))
def test_declared_tools_give_one_call_to_the_first_tool(urls: dict[str, str], kind: str) -> None:
    response = chat(urls, kind, Conversation("sys", "weather in Paris?", tools=True))
    assert response.status_code == 200, response.text
    outcome = VENDORS[kind].outcome(response.json())
    assert outcome.text is None
    assert outcome.tool == ("get_weather", WEATHER_ARGS)
    assert outcome.usage == (4, len(WEATHER_ARGS), 4 + len(WEATHER_ARGS))
    if kind == "openai":  # the arguments string is what Portico's translators write for Bedrock and Gemini
        call = response.json()["choices"][0]["message"]["tool_calls"][0]
        assert (call["id"], call["function"]["arguments"]) == ("call_sim_0", json.dumps(WEATHER_ARGS))


@pytest.mark.parametrize("kind", list(VENDORS))
def test_a_tool_result_is_acknowledged(urls: dict[str, str], kind: str) -> None:
    result = '{"temp": 21, "sky": "clear"}'
    response = chat(urls, kind, Conversation("sys", "weather in Paris?", tools=True, tool_result=result))
    assert response.status_code == 200, response.text
    outcome = VENDORS[kind].outcome(response.json())
    assert outcome.text == f"Tool result received: {result}"
    assert outcome.tool is None
    # system 1 + user 3 + tool result 4; the tool call's arguments are not counted.
    assert outcome.usage[0] == 8


def test_the_three_vendors_agree(urls: dict[str, str]) -> None:
    for conversation in (
        Conversation("Be brief.", "Name three colours"),
        Conversation("Be brief.", "Weather?", tools=True),
        Conversation("Be brief.", "Weather?", tools=True, tool_result="sunny and   warm"),
    ):
        outcomes = {kind: VENDORS[kind].outcome(chat(urls, kind, conversation).json()) for kind in VENDORS}
        assert outcomes["openai"] == outcomes["bedrock"] == outcomes["vertex"], conversation


def test_finish_reasons_in_each_vocabulary(urls: dict[str, str]) -> None:
    plain, tools = Conversation("s", "hello"), Conversation("s", "hello", tools=True)
    assert chat(urls, "openai", plain).json()["choices"][0]["finish_reason"] == "stop"
    assert chat(urls, "openai", tools).json()["choices"][0]["finish_reason"] == "tool_calls"
    assert chat(urls, "bedrock", plain).json()["stopReason"] == "end_turn"
    assert chat(urls, "bedrock", tools).json()["stopReason"] == "tool_use"
    assert chat(urls, "vertex", plain).json()["candidates"][0]["finishReason"] == "STOP"
    assert chat(urls, "vertex", tools).json()["candidates"][0]["finishReason"] == "STOP"


def test_output_caps_cut_the_reply_and_say_so(urls: dict[str, str]) -> None:
    body = {**openai_body(Conversation("s", "one two three")), "max_tokens": 2}
    choice = HTTP.post(urls["openai"] + "/v1/chat/completions", json=body, headers=OPENAI_AUTH).json()["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Simulated reply", "length")
    body = {**bedrock_body(Conversation("s", "one two three")), "inferenceConfig": {"maxTokens": 2}}
    converse = HTTP.post(urls["bedrock"] + VENDORS["bedrock"].chat_path, json=body, headers=BEDROCK_AUTH).json()
    assert converse["stopReason"] == "max_tokens"
    assert converse["output"]["message"]["content"] == [{"text": "Simulated reply"}]
    body = {**vertex_body(Conversation("s", "one two three")), "generationConfig": {"maxOutputTokens": 2}}
    gemini = HTTP.post(urls["vertex"] + VENDORS["vertex"].chat_path, json=body, headers=VERTEX_AUTH).json()
    assert gemini["candidates"][0]["finishReason"] == "MAX_TOKENS"


# --- OpenAI -------------------------------------------------------------------------------------------------------


def sse_events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]


def test_openai_stream_reconstructs_the_text_and_reports_usage(urls: dict[str, str]) -> None:
    body = {**openai_body(Conversation("sys", "tell me a story")), "stream": True}
    body["stream_options"] = {"include_usage": True}
    response = HTTP.post(urls["openai"] + "/v1/chat/completions", json=body, headers=OPENAI_AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Simulated reply to: tell me a story"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 7
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7
    assert all(chunk["usage"] is None for chunk in chunks[:-1])

    body.pop("stream_options")
    plain = [
        json.loads(e)
        for e in sse_events(HTTP.post(urls["openai"] + "/v1/chat/completions", json=body, headers=OPENAI_AUTH))[:-1]
    ]
    assert all("usage" not in chunk and chunk["choices"] for chunk in plain)


def test_openai_sdk_reads_chat_stream_tools_and_embeddings(urls: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=urls["openai"] + "/v1", api_key="sk-sim", max_retries=0)
    completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi there"}])
    assert completion.choices[0].message.content == "Simulated reply to: Hi there"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2

    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi there"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "Simulated reply to: Hi there"

    tool_stream = client.chat.completions.create(stream=True, **openai_body(Conversation("s", "go", tools=True)))
    deltas = [chunk.choices[0].delta.tool_calls for chunk in tool_stream if chunk.choices[0].delta.tool_calls]
    assert deltas[0][0].id == "call_sim_0"
    assert deltas[0][0].function is not None and deltas[0][0].function.name == "get_weather"
    arguments = "".join((d[0].function.arguments or "") if d[0].function else "" for d in deltas)
    assert json.loads(arguments) == WEATHER_ARGS

    vectors = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=5)
    floats = HTTP.post(
        urls["openai"] + "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": ["alpha", "beta"], "dimensions": 5},
        headers=OPENAI_AUTH,
    ).json()
    for decoded, plain in zip(vectors.data, floats["data"], strict=True):
        assert decoded.embedding == pytest.approx(plain["embedding"], abs=1e-6)

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], extra_headers={"x-sim-fail": "429"}
        )


def test_openai_embeddings_are_deterministic_and_sized(urls: dict[str, str]) -> None:
    def embed(**body: Any) -> dict[str, Any]:
        response = HTTP.post(urls["openai"] + "/v1/embeddings", json={"model": "e", **body}, headers=OPENAI_AUTH)
        assert response.status_code == 200, response.text
        return dict(response.json())

    first, again = embed(input=["a b c", "other"]), embed(input="a b c")
    assert first["data"][0]["embedding"] == again["data"][0]["embedding"]
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]
    assert len(first["data"][0]["embedding"]) == 8
    assert first["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    wide = embed(input="a b c", dimensions=40)["data"][0]["embedding"]
    assert len(wide) == 40 and wide[:8] == first["data"][0]["embedding"]
    assert all(-1 <= v <= 1 and round(v, 6) == v for v in wide)
    packed = embed(input="a b c", encoding_format="base64")["data"][0]["embedding"]
    raw = base64.b64decode(packed)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(first["data"][0]["embedding"], abs=1e-6)
    bad = HTTP.post(
        urls["openai"] + "/v1/embeddings", json={"model": "e", "input": "x", "dimensions": 0}, headers=OPENAI_AUTH
    )
    assert bad.status_code == 400 and "dimensions" in bad.json()["error"]["message"]


def test_openai_completions_and_models(urls: dict[str, str]) -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": ["Say  hi", "Say bye"]}
    completion = HTTP.post(urls["openai"] + "/v1/completions", json=body, headers=OPENAI_AUTH).json()
    assert completion["object"] == "text_completion"
    assert [c["text"] for c in completion["choices"]] == ["Simulated reply to: Say hi", "Simulated reply to: Say bye"]
    assert completion["usage"] == {"prompt_tokens": 4, "completion_tokens": 10, "total_tokens": 14}
    streamed = HTTP.post(urls["openai"] + "/v1/completions", json={**body, "stream": True}, headers=OPENAI_AUTH)
    chunks = [json.loads(event) for event in sse_events(streamed)[:-1]]
    assert (
        "".join(c["choices"][0]["text"] for c in chunks if c["choices"][0]["index"] == 1)
        == "Simulated reply to: Say bye"
    )

    models = HTTP.get(urls["openai"] + "/v1/models", headers=OPENAI_AUTH).json()
    assert models["object"] == "list" and "gpt-4o-mini" in [m["id"] for m in models["data"]]
    assert HTTP.get(urls["openai"] + "/v1/models/gpt-4o-mini", headers=OPENAI_AUTH).json()["id"] == "gpt-4o-mini"
    missing = HTTP.get(urls["openai"] + "/v1/models/nope", headers=OPENAI_AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


# --- Bedrock ------------------------------------------------------------------------------------------------------


def bedrock_client(url: str, *, fail: str | None = None) -> Any:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDSIM",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    if fail is not None:
        client.meta.events.register(
            "before-sign.bedrock-runtime.*", lambda request, **_: request.headers.__setitem__("x-sim-fail", fail)
        )
    return client


def decode_events(payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    buffer = EventStreamBuffer()
    buffer.add_data(payload)
    messages: list[Any] = list(buffer)  # checks both CRCs of every message
    assert {m.headers[":message-type"] for m in messages} == {"event"}
    assert {m.headers[":content-type"] for m in messages} == {"application/json"}
    return [(m.headers[":event-type"], json.loads(m.payload)) for m in messages]


def test_bedrock_converse_stream_is_a_valid_event_stream(urls: dict[str, str]) -> None:
    url = urls["bedrock"] + "/model/anthropic.claude-3-haiku/converse-stream"
    response = HTTP.post(url, json=bedrock_body(Conversation("sys", "stream  this please")), headers=BEDROCK_AUTH)
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = decode_events(response.content)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(body["delta"]["text"] for kind, body in events if kind == "contentBlockDelta")
    assert text == "Simulated reply to: stream this please"
    assert events[-2][1] == {"stopReason": "end_turn"}
    assert events[-1][1]["usage"] == {"inputTokens": 4, "outputTokens": 6, "totalTokens": 10}

    tools = HTTP.post(url, json=bedrock_body(Conversation("s", "go", tools=True)), headers=BEDROCK_AUTH)
    tool_events = dict(decode_events(tools.content))
    assert tool_events["contentBlockStart"]["start"]["toolUse"] == {"toolUseId": "tooluse_sim_0", "name": "get_weather"}
    assert json.loads(tool_events["contentBlockDelta"]["delta"]["toolUse"]["input"]) == WEATHER_ARGS
    assert tool_events["messageStop"] == {"stopReason": "tool_use"}


def test_boto3_reads_converse_stream_invoke_and_errors(urls: dict[str, str]) -> None:
    client = bedrock_client(urls["bedrock"])
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
    reply = client.converse(modelId=arn, **bedrock_body(Conversation("sys", "hello bedrock", tools=True)))
    tool_use = reply["output"]["message"]["content"][0]["toolUse"]
    assert (tool_use["toolUseId"], tool_use["input"]) == ("tooluse_sim_0", WEATHER_ARGS)
    assert reply["metrics"]["latencyMs"] >= 0
    stats = HTTP.get(urls["bedrock"] + "/_sim/stats").json()
    assert stats["by_model"][arn] >= 1  # botocore percent-encodes the ARN's ':' and '/'

    stream = client.converse_stream(modelId="amazon.nova-lite-v1:0", **bedrock_body(Conversation("s", "hi you")))
    events = list(stream["stream"])
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
        == "Simulated reply to: hi you"
    )
    assert events[-1]["metadata"]["usage"]["totalTokens"] == 3 + 5

    titan = client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "a b", "dimensions": 16})
    )
    titan_body = json.loads(titan["body"].read())
    assert len(titan_body["embedding"]) == 16 and titan_body["inputTextTokenCount"] == 2

    with pytest.raises(ClientError) as raised:
        bedrock_client(urls["bedrock"], fail="429").converse(modelId="m", **bedrock_body(Conversation("s", "x")))
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_bedrock_embeddings_match_openai_vectors(urls: dict[str, str]) -> None:
    def invoke(model: str, body: dict[str, Any]) -> dict[str, Any]:
        response = HTTP.post(urls["bedrock"] + f"/model/{model}/invoke", json=body, headers=BEDROCK_AUTH)
        assert response.status_code == 200, response.text
        return dict(response.json())

    reference = HTTP.post(
        urls["openai"] + "/v1/embeddings", json={"model": "e", "input": ["x y", "z"]}, headers=OPENAI_AUTH
    ).json()
    vectors = [item["embedding"] for item in reference["data"]]
    assert invoke("amazon.titan-embed-text-v2:0", {"inputText": "x y"})["embedding"] == vectors[0]
    cohere = invoke("cohere.embed-english-v3", {"texts": ["x y", "z"], "input_type": "search_document"})
    assert cohere["embeddings"] == vectors and cohere["texts"] == ["x y", "z"] and cohere["id"]
    unknown = HTTP.post(urls["bedrock"] + "/model/m/invoke", json={"prompt": "x"}, headers=BEDROCK_AUTH)
    assert unknown.status_code == 400 and unknown.headers["x-amzn-ErrorType"] == "ValidationException"


# --- Vertex -------------------------------------------------------------------------------------------------------


def test_vertex_streams_as_sse_or_as_a_json_array(urls: dict[str, str]) -> None:
    url = f"{urls['vertex']}{VERTEX_MODELS}/gemini-2.0-flash:streamGenerateContent"
    body = vertex_body(Conversation("sys", "stream   gemini"))
    sse = HTTP.post(url, params={"alt": "sse"}, json=body, headers=VERTEX_AUTH)
    assert sse.headers["content-type"].startswith("text/event-stream")
    chunks = [json.loads(event) for event in sse_events(sse)]
    assert (
        "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        == "Simulated reply to: stream gemini"
    )
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}
    assert all(
        c["candidates"][0]["content"]["role"] == "model" and c["modelVersion"] == "gemini-2.0-flash" for c in chunks
    )
    array = HTTP.post(url, json=body, headers=VERTEX_AUTH).json()
    assert [c["candidates"][0]["content"] for c in array] == [c["candidates"][0]["content"] for c in chunks]


def test_vertex_predict_embeddings_and_count_tokens(urls: dict[str, str]) -> None:
    url = f"{urls['vertex']}{VERTEX_MODELS}/text-embedding-005:predict"
    body = {"instances": [{"content": "x y"}, {"content": "z"}], "parameters": {"outputDimensionality": 8}}
    predictions = HTTP.post(url, json=body, headers=VERTEX_AUTH).json()["predictions"]
    reference = HTTP.post(
        urls["openai"] + "/v1/embeddings", json={"model": "e", "input": ["x y", "z"]}, headers=OPENAI_AUTH
    ).json()
    assert [p["embeddings"]["values"] for p in predictions] == [d["embedding"] for d in reference["data"]]
    assert predictions[0]["embeddings"]["statistics"] == {"token_count": 2, "truncated": False}
    body["parameters"] = {"outputDimensionality": 3}
    assert len(HTTP.post(url, json=body, headers=VERTEX_AUTH).json()["predictions"][0]["embeddings"]["values"]) == 3

    count = f"{urls['vertex']}{VERTEX_MODELS}/gemini-2.0-flash:countTokens"
    assert (
        HTTP.post(count, json=vertex_body(Conversation("a b", "c d e")), headers=VERTEX_AUTH).json()["totalTokens"] == 5
    )
    unknown = HTTP.post(f"{urls['vertex']}{VERTEX_MODELS}/gemini-2.0-flash:explode", json={}, headers=VERTEX_AUTH)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"


# --- knobs: auth, injected failures, latency, counters, the clock -------------------------------------------------

AUTH_REJECTIONS = {"openai": (401, "invalid_api_key"), "bedrock": (403, None), "vertex": (401, "UNAUTHENTICATED")}


@pytest.mark.parametrize("kind", list(VENDORS))
@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwdw=="])
def test_credentials_are_required(urls: dict[str, str], kind: str, authorization: str | None) -> None:
    vendor = VENDORS[kind]
    headers = {} if authorization is None else {"Authorization": authorization}
    response = HTTP.post(urls[kind] + vendor.chat_path, json=vendor.body(Conversation("s", "u")), headers=headers)
    status, code = AUTH_REJECTIONS[kind]
    assert response.status_code == status
    assert vendor.error_message(response.json())
    codes: dict[str, Callable[[Any], object]] = {
        "openai": lambda e: e["error"]["code"],
        "bedrock": lambda e: None,
        "vertex": lambda e: e["error"]["status"],
    }
    assert codes[kind](response.json()) == code


def test_bedrock_needs_the_amz_date_beside_the_signature(urls: dict[str, str]) -> None:
    headers = {"Authorization": BEDROCK_AUTH["Authorization"]}
    response = HTTP.post(
        urls["bedrock"] + VENDORS["bedrock"].chat_path, json=bedrock_body(Conversation("s", "u")), headers=headers
    )
    assert response.status_code == 403 and "Signature Version 4" in response.json()["message"]


@pytest.mark.parametrize("kind", list(VENDORS))
def test_x_sim_fail_injects_the_status_with_retry_after(urls: dict[str, str], kind: str) -> None:
    for status in (429, 503):
        response = chat(urls, kind, Conversation("s", "u"), **{"x-sim-fail": str(status)})
        assert response.status_code == status
        assert response.headers["retry-after"] == "1"
        assert VENDORS[kind].error_message(response.json())
    server_error = chat(urls, kind, Conversation("s", "u"), **{"x-sim-fail": "500"})
    assert server_error.status_code == 500 and "retry-after" not in server_error.headers


@pytest.mark.parametrize("kind", list(VENDORS))
def test_x_sim_fail_times_fails_then_succeeds(urls: dict[str, str], kind: str) -> None:
    key = uuid.uuid4().hex
    headers = {"x-sim-fail-times": "2", "x-sim-key": key, "x-sim-fail": "503"}
    statuses = [chat(urls, kind, Conversation("s", "u"), **headers).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    other_key = chat(urls, kind, Conversation("s", "u"), **{**headers, "x-sim-key": key + "-other"})
    assert other_key.status_code == 503
    HTTP.post(urls[kind] + "/_sim/reset")  # forgets the keys
    assert chat(urls, kind, Conversation("s", "u"), **headers).status_code == 503


@pytest.mark.parametrize("kind", list(VENDORS))
def test_latency_header_delays_the_answer(urls: dict[str, str], kind: str) -> None:
    started = time.perf_counter()
    response = chat(urls, kind, Conversation("s", "u"), **{"x-sim-latency-ms": "200"})
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.2


def test_configured_latency_and_failures() -> None:
    with running_simulator("vertex", latency_ms=150, fail_rate=1.0, fail_status=503, retry_after=2.5) as url:
        started = time.perf_counter()
        response = HTTP.post(
            url + VENDORS["vertex"].chat_path, json=vertex_body(Conversation("s", "u")), headers=VERTEX_AUTH
        )
        assert time.perf_counter() - started >= 0.15
        assert response.status_code == 503 and response.json()["error"]["status"] == "UNAVAILABLE"
        assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("3", "2500")


def test_random_failures_follow_the_seed() -> None:
    def pattern(seed: int) -> list[int]:
        with running_simulator("openai", fail_rate=0.5, seed=seed) as url:
            body = openai_body(Conversation("s", "u"))
            first = [
                HTTP.post(url + "/v1/chat/completions", json=body, headers=OPENAI_AUTH).status_code for _ in range(12)
            ]
            HTTP.post(url + "/_sim/reset")
            again = [
                HTTP.post(url + "/v1/chat/completions", json=body, headers=OPENAI_AUTH).status_code for _ in range(12)
            ]
            assert again == first  # reset reseeds
            return first

    seven = pattern(7)
    assert set(seven) == {200, 429}
    assert pattern(7) == seven
    assert pattern(8) != seven


@pytest.mark.parametrize("kind", list(VENDORS))
def test_stats_count_requests_and_reset_clears_them(urls: dict[str, str], kind: str) -> None:
    assert HTTP.post(urls[kind] + "/_sim/reset").json() == {"reset": True}
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-1"})
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-1", "x-sim-fail": "500"})
    chat(urls, kind, Conversation("s", "u"), **{"x-sim-request-id": "r-2"})
    stats = HTTP.get(urls[kind] + "/_sim/stats").json()
    assert stats["total"] == 3
    assert sum(stats["by_route"].values()) == 3 and len(stats["by_route"]) == 1
    assert list(stats["by_model"].values()) == [3]
    assert stats["by_request_id"] == {"r-1": 2, "r-2": 1}
    assert (stats["injected_failures"], stats["failures_by_status"]) == (1, {"500": 1})
    HTTP.post(urls[kind] + "/_sim/reset")
    cleared = HTTP.get(urls[kind] + "/_sim/stats").json()
    assert cleared == {
        "total": 0,
        "by_route": {},
        "by_model": {},
        "by_request_id": {},
        "injected_failures": 0,
        "failures_by_status": {},
    }


def test_clock_runs_at_its_speed() -> None:
    clock = Clock(speed=3600, start=0.0)
    time.sleep(0.02)
    assert clock.now() >= 72  # 20 ms of real time is at least 72 simulated seconds
    before = clock.now()
    clock.speed = 1.0
    assert before <= clock.now() < before + 5  # no jump when the speed changes
    with pytest.raises(ValueError):
        Clock(speed=0)


def test_bad_input_is_a_400_in_the_vendor_shape(urls: dict[str, str]) -> None:
    broken = HTTP.post(urls["openai"] + "/v1/chat/completions", content=b"{not json", headers=OPENAI_AUTH)
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]
    no_messages = HTTP.post(urls["bedrock"] + VENDORS["bedrock"].chat_path, json={}, headers=BEDROCK_AUTH)
    assert no_messages.status_code == 400 and "messages" in no_messages.json()["message"]
    no_contents = HTTP.post(urls["vertex"] + VENDORS["vertex"].chat_path, json={}, headers=VERTEX_AUTH)
    assert no_contents.status_code == 400 and no_contents.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_cli_serves_each_kind() -> None:
    for kind in KINDS:
        args = build_parser().parse_args(["simulate", kind, "--fail-status", "503", "--retry-after", "0"])
        assert (args.kind, args.fail_status, args.retry_after) == (kind, 503, 0.0)
    port = free_port()
    command = [sys.executable, "-m", "portico.cli", "simulate", "openai", "--port", str(port), "--fail-rate", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = HTTP.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json=openai_body(Conversation("s", "u")),
                    headers=OPENAI_AUTH,
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "portico simulate did not start"
                time.sleep(0.05)
        assert response.status_code == 429  # --fail-rate 1 with the default status
    finally:
        process.terminate()
        process.communicate(timeout=10)
