"""Bedrock → OpenAI responses: a multi-turn tool round trip, finish reasons, usage, and the InvokeModel embedding
translations both ways."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from providers.translate.bedrock import (
    ConverseStreamTranslator,
    TranslationError,
    chat_to_converse,
    converse_to_chat,
    embedding_requests,
    embedding_response,
)
from tests.support.bedrock import MODEL, WEATHER_TOOL, call, chat, text, user


def test_multi_turn_tool_round_trip() -> None:
    request = chat(
        {"role": "system", "content": "Use tools."},
        user("Weather in Paris and Oslo?"),
        tools=[WEATHER_TOOL],
    )
    assert chat_to_converse(request)["messages"] == [{"role": "user", "content": text("Weather in Paris and Oslo?")}]

    # The model answers with two parallel tool calls.
    converse_reply = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Checking both."},
                    {"toolUse": {"toolUseId": "tooluse_p", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "tooluse_o", "name": "get_weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
        "metrics": {"latencyMs": 100},
    }
    completion = converse_to_chat(converse_reply, model=MODEL, completion_id="chatcmpl-1", created=1700000000)
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking both.",
                    "refusal": None,
                    "tool_calls": [
                        call("tooluse_p", "get_weather", '{"city": "Paris"}'),
                        call("tooluse_o", "get_weather", '{"city": "Oslo"}'),
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    }

    # The client sends the assistant message back with both results and a follow-up question.
    assistant = completion["choices"][0]["message"]
    follow_up = chat(
        *request["messages"],
        assistant,
        {"role": "tool", "tool_call_id": "tooluse_p", "content": "18C"},
        {"role": "tool", "tool_call_id": "tooluse_o", "content": [{"type": "text", "text": "9C"}]},
        user("Which is warmer?"),
        tools=[WEATHER_TOOL],
    )
    assert chat_to_converse(follow_up)["messages"] == [
        {"role": "user", "content": text("Weather in Paris and Oslo?")},
        {"role": "assistant", "content": converse_reply["output"]["message"]["content"]},  # type: ignore[index]
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_p", "content": text("18C")}},
                {"toolResult": {"toolUseId": "tooluse_o", "content": text("9C")}},
                {"text": "Which is warmer?"},
            ],
        },
    ]


FINISH_REASONS = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("content_filtered", "content_filter"),
    ("guardrail_intervened", "content_filter"),
    ("malformed_model_output", "stop"),
    ("some_future_reason", "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish_reason"), FINISH_REASONS)
def test_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": text("ok")}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    assert (
        converse_to_chat(response, model=MODEL, completion_id="c", created=0)["choices"][0]["finish_reason"]
        == finish_reason
    )
    translator = ConverseStreamTranslator(MODEL, "c", 0)
    translator.feed({"messageStart": {"role": "assistant"}})
    assert (
        translator.feed({"messageStop": {"stopReason": stop_reason}})[0]["choices"][0]["finish_reason"] == finish_reason
    )


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        ),
        (
            # inputTokens excludes cache reads and writes; OpenAI's prompt_tokens includes them.
            {
                "inputTokens": 10,
                "outputTokens": 5,
                "totalTokens": 115,
                "cacheReadInputTokens": 60,
                "cacheWriteInputTokens": 40,
            },
            {
                "prompt_tokens": 110,
                "completion_tokens": 5,
                "total_tokens": 115,
                "prompt_tokens_details": {"cached_tokens": 60},
            },
        ),
    ],
)
def test_usage(usage: dict[str, int], expected: dict[str, Any]) -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": text("ok")}},
        "stopReason": "end_turn",
        "usage": usage,
    }
    assert converse_to_chat(response, model=MODEL, completion_id="c", created=0)["usage"] == expected


def test_a_reply_of_only_tool_calls_has_null_content() -> None:
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"q": "Zürich"}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    message = converse_to_chat(response, model=MODEL, completion_id="c", created=0)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [call("t1", "f", '{"q": "Zürich"}')]


# --- Embeddings -------------------------------------------------------------------------------------------------

# (name, OpenAI request, expected InvokeModel bodies)
EMBEDDING_REQUESTS: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    (
        "titan v1, one body per input",
        {"model": "amazon.titan-embed-text-v1", "input": ["a", "b"]},
        [{"inputText": "a"}, {"inputText": "b"}],
    ),
    (
        "titan v2 with dimensions",
        {"model": "amazon.titan-embed-text-v2:0", "input": "a", "dimensions": 256},
        [{"inputText": "a", "dimensions": 256}],
    ),
    (
        "cohere, one body for the list",
        {"model": "cohere.embed-english-v3", "input": ["a", "b"]},
        [{"texts": ["a", "b"], "input_type": "search_document"}],
    ),
    (
        "cohere v4 through a geography inference profile, with dimensions",
        {"model": "us.cohere.embed-v4:0", "input": "a", "dimensions": 512},
        [{"texts": ["a"], "input_type": "search_document", "output_dimension": 512}],
    ),
    (
        "a foundation-model ARN",
        {"model": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0", "input": "a"},
        [{"inputText": "a"}],
    ),
]


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [case[1:] for case in EMBEDDING_REQUESTS],
    ids=[case[0] for case in EMBEDDING_REQUESTS],
)
def test_embedding_requests(request_body: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    assert embedding_requests(request_body) == expected


def test_cohere_requests_split_at_96_texts() -> None:
    texts = [f"t{number}" for number in range(200)]
    bodies = embedding_requests({"model": "cohere.embed-multilingual-v3", "input": texts})
    assert [len(body["texts"]) for body in bodies] == [96, 96, 8]
    assert [text for body in bodies for text in body["texts"]] == texts


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"model": "meta.llama3-8b-instruct-v1:0", "input": "a"}, "model"),
        ({"input": "a"}, "model"),
        ({"model": "amazon.titan-embed-text-v1", "input": "a", "dimensions": 256}, "dimensions"),
        ({"model": "amazon.titan-embed-text-v2:0", "input": "a", "dimensions": 300}, "dimensions"),
        ({"model": "cohere.embed-english-v3", "input": "a", "dimensions": 256}, "dimensions"),
        ({"model": "amazon.titan-embed-text-v2:0", "input": [[1, 2, 3]]}, "input"),
        ({"model": "amazon.titan-embed-text-v2:0", "input": []}, "input"),
        ({"model": "amazon.titan-embed-text-v2:0", "input": "a", "dimensions": True}, "dimensions"),
    ],
)
def test_embedding_request_errors_name_the_field(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        embedding_requests(request_body)
    assert caught.value.param == param


def test_titan_embedding_response_sums_tokens() -> None:
    bodies = [{"embedding": [0.1, 0.2], "inputTextTokenCount": 3}, {"embedding": [0.3, 0.4], "inputTextTokenCount": 4}]
    assert embedding_response("amazon.titan-embed-text-v2:0", bodies) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
        ],
        "model": "amazon.titan-embed-text-v2:0",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


@pytest.mark.parametrize(
    "embeddings",
    [[[0.5, 0.25], [1.0, 2.0]], {"float": [[0.5, 0.25], [1.0, 2.0]]}],
    ids=["list (embed-v3)", "by type (embed-v4)"],
)
def test_cohere_embedding_response_takes_tokens_from_the_caller(embeddings: Any) -> None:
    body = {"id": "x", "response_type": "embeddings_floats", "texts": ["a", "b"], "embeddings": embeddings}
    result = embedding_response("cohere.embed-english-v3", [body], input_tokens=5)
    assert [item["embedding"] for item in result["data"]] == [[0.5, 0.25], [1.0, 2.0]]
    assert result["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


def test_base64_embeddings_are_little_endian_float32() -> None:
    result = embedding_response(
        "amazon.titan-embed-text-v1", [{"embedding": [0.5, -2.0], "inputTextTokenCount": 1}], encoding_format="base64"
    )
    encoded = result["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, -2.0)
