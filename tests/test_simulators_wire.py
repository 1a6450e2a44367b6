"""The OpenAI, Bedrock and Vertex inference simulators over real HTTP (uvicorn on 127.0.0.1).

Each vendor's wire format, checked with clients nobody here wrote where one exists (the openai SDK, boto3's
bedrock-runtime client, botocore's event-stream decoder) and with httpx otherwise.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from tests.support.simulators import (
    BEDROCK_AUTH,
    HTTP,
    OPENAI_AUTH,
    VERTEX_AUTH,
    VERTEX_MODELS,
    WEATHER_ARGS,
    Conversation,
    _close_client,  # noqa: F401 - the fixture
    bedrock_body,
    openai_body,
    urls_fixture,  # noqa: F401 - the fixture
    vertex_body,
)

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
