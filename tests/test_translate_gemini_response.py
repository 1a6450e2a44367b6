"""Vertex AI Gemini → OpenAI responses: a multi-turn tool round trip with thought signatures, finish reasons, usage,
candidates as choices, blocked prompts, and the embeddings translation both ways."""

from __future__ import annotations

from typing import Any

import pytest

from providers.translate.gemini import (
    GeminiStreamTranslator,
    TranslationError,
    chat_to_gemini,
    embedding_predict_body,
    embedding_response,
    gemini_to_chat,
)
from tests.support.gemini import MODEL, WEATHER_TOOL, call, chat, turn, user


def test_multi_turn_tool_round_trip_with_thought_signatures() -> None:
    request = chat(user("Weather in Paris and Oslo?"), tools=[WEATHER_TOOL])
    gemini_reply = {
        "candidates": [
            {
                "index": 0,
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking about cities", "thought": True},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "sig-1",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 12, "totalTokenCount": 42},
        "modelVersion": MODEL,
    }
    completion = gemini_to_chat(gemini_reply, model=MODEL, completion_id="chatcmpl-1", created=1700000000)
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
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        call("call_0", "get_weather", '{"city": "Paris"}', signature="sig-1"),
                        call("call_1", "get_weather", '{"city": "Oslo"}'),
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    }

    assistant = completion["choices"][0]["message"]
    follow_up = chat(
        *request["messages"],
        assistant,
        {"role": "tool", "tool_call_id": "call_1", "content": "9C"},
        {"role": "tool", "tool_call_id": "call_0", "content": "18C"},
        user("Which is warmer?"),
        tools=[WEATHER_TOOL],
    )
    assert chat_to_gemini(follow_up)["contents"] == [
        turn("user", {"text": "Weather in Paris and Oslo?"}),
        turn(
            "model",
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-1"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
        ),
        turn(
            "user",
            {"functionResponse": {"name": "get_weather", "response": {"content": "9C"}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
            {"text": "Which is warmer?"},
        ),
    ]


FINISH_REASONS = [
    ("STOP", False, "stop"),
    ("STOP", True, "tool_calls"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"),
    ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"),
    ("SPII", False, "content_filter"),
    ("OTHER", False, "stop"),
    ("MALFORMED_FUNCTION_CALL", False, "stop"),
]


@pytest.mark.parametrize(("gemini_reason", "with_call", "finish_reason"), FINISH_REASONS)
def test_finish_reasons(gemini_reason: str, with_call: bool, finish_reason: str) -> None:
    parts: list[dict[str, Any]] = [{"text": "ok"}]
    if with_call:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    response = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": gemini_reason}]}
    assert (
        gemini_to_chat(response, model=MODEL, completion_id="c", created=0)["choices"][0]["finish_reason"]
        == finish_reason
    )
    chunks = GeminiStreamTranslator(MODEL, "c", 0).feed(response)
    assert chunks[-1]["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        ),
        (
            # Thinking tokens are output tokens; cached content is part of the prompt.
            {
                "promptTokenCount": 100,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 20,
                "cachedContentTokenCount": 80,
                "totalTokenCount": 125,
            },
            {
                "prompt_tokens": 100,
                "completion_tokens": 25,
                "total_tokens": 125,
                "prompt_tokens_details": {"cached_tokens": 80},
                "completion_tokens_details": {"reasoning_tokens": 20},
            },
        ),
        (
            {"promptTokenCount": 4, "totalTokenCount": 4},
            {"prompt_tokens": 4, "completion_tokens": 0, "total_tokens": 4},
        ),
    ],
)
def test_usage(metadata: dict[str, int], expected: dict[str, Any]) -> None:
    response = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": metadata,
    }
    assert gemini_to_chat(response, model=MODEL, completion_id="c", created=0)["usage"] == expected


def test_candidates_become_choices() -> None:
    response = {
        "candidates": [
            {
                "index": 0,
                "content": {"role": "model", "parts": [{"text": "One"}, {"text": " A"}]},
                "finishReason": "STOP",
            },
            {"index": 1, "content": {"role": "model", "parts": [{"text": "Two"}]}, "finishReason": "MAX_TOKENS"},
            {"index": 2, "finishReason": "SAFETY"},
        ]
    }
    choices = gemini_to_chat(response, model=MODEL, completion_id="c", created=0)["choices"]
    assert [(item["index"], item["message"]["content"], item["finish_reason"]) for item in choices] == [
        (0, "One A", "stop"),
        (1, "Two", "length"),
        (2, "", "content_filter"),
    ]


def test_a_blocked_prompt_is_one_filtered_choice() -> None:
    response = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
    }
    completion = gemini_to_chat(response, model=MODEL, completion_id="c", created=0)
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "", "refusal": None},
            "finish_reason": "content_filter",
            "logprobs": None,
        }
    ]
    chunks = GeminiStreamTranslator(MODEL, "c", 0, include_usage=True).feed(response)
    assert [
        item["choices"][0]["finish_reason"] if item["choices"] else item["usage"]["total_tokens"] for item in chunks
    ] == [
        None,
        "content_filter",
        3,
    ]


# --- Embeddings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({"model": "text-embedding-005", "input": "a"}, {"instances": [{"content": "a"}]}),
        (
            {"model": "text-embedding-005", "input": ["a", "b"], "dimensions": 256},
            {"instances": [{"content": "a"}, {"content": "b"}], "parameters": {"outputDimensionality": 256}},
        ),
    ],
)
def test_embedding_predict_body(request_body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert embedding_predict_body(request_body) == expected


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"model": "text-embedding-005", "input": [1, 2]}, "input"),
        ({"model": "text-embedding-005"}, "input"),
        ({"model": "text-embedding-005", "input": "a", "dimensions": 0}, "dimensions"),
    ],
)
def test_embedding_request_errors_name_the_field(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        embedding_predict_body(request_body)
    assert caught.value.param == param


def test_embedding_response() -> None:
    predict_response = {
        "predictions": [
            {"embeddings": {"statistics": {"truncated": False, "token_count": 6}, "values": [0.1, 0.2]}},
            {"embeddings": {"statistics": {"truncated": False, "token_count": 4.0}, "values": [0.3, 0.4]}},
        ],
        "metadata": {"billableCharacterCount": 20},
    }
    assert embedding_response("text-embedding-005", predict_response) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
        ],
        "model": "text-embedding-005",
        "usage": {"prompt_tokens": 10, "total_tokens": 10},
    }
