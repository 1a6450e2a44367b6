"""Vertex AI Gemini streaming: a realistic streamGenerateContent SSE stream replayed into OpenAI chunks."""

from __future__ import annotations

from typing import Any

from providers.translate.gemini import GeminiStreamTranslator, gemini_to_chat
from tests.support.gemini import MODEL, call

# streamGenerateContent?alt=sse as Vertex sends it: text in pieces, then a function call with the finish reason;
# usageMetadata is cumulative and complete on the last payload.
STREAM_PAYLOADS: list[dict[str, Any]] = [
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Let me "}]}}],
        "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20},
        "modelVersion": MODEL,
    },
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "plan", "thought": True}, {"text": "check."}]}}]},
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig"}
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 9, "totalTokenCount": 29},
    },
]
STREAM_AS_RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Let me check."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig"},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 9, "totalTokenCount": 29},
}


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def replay(payloads: list[dict[str, Any]], include_usage: bool) -> list[dict[str, Any]]:
    translator = GeminiStreamTranslator(MODEL, "chatcmpl-s", 7, include_usage=include_usage)
    return [item for payload in payloads for item in translator.feed(payload)]


def test_stream_payloads_become_openai_chunks() -> None:
    start = call("call_0", "get_weather", "", signature="sig")
    assert replay(STREAM_PAYLOADS, include_usage=True) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk({"tool_calls": [{"index": 0, **start}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}),
        chunk({}, "tool_calls"),
        {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
        },
    ]


def test_stream_concatenates_to_the_non_stream_result() -> None:
    chunks = replay(STREAM_PAYLOADS, include_usage=False)
    deltas = [item["choices"][0]["delta"] for item in chunks]
    streamed_text = "".join(delta.get("content", "") for delta in deltas)
    streamed_calls = [tool_call for delta in deltas for tool_call in delta.get("tool_calls", [])]
    message = gemini_to_chat(STREAM_AS_RESPONSE, model=MODEL, completion_id="chatcmpl-s", created=7)["choices"][0][
        "message"
    ]
    assert streamed_text == message["content"]
    assert streamed_calls[0]["id"] == message["tool_calls"][0]["id"]
    assert (
        "".join(item["function"]["arguments"] for item in streamed_calls)
        == message["tool_calls"][0]["function"]["arguments"]
    )
    assert all("usage" not in item for item in chunks)


def test_stream_usage_waits_for_every_choice_to_finish() -> None:
    translator = GeminiStreamTranslator(MODEL, "c", 0, include_usage=True)
    first = translator.feed(
        {
            "candidates": [
                {"index": 0, "content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": "STOP"},
                {"index": 1, "content": {"role": "model", "parts": [{"text": "b"}]}},
            ],
            "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
        }
    )
    assert all(item["choices"] for item in first)
    last = translator.feed(
        {
            "candidates": [
                {"index": 1, "content": {"role": "model", "parts": [{"text": "c"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 3, "totalTokenCount": 4},
        }
    )
    assert [item["choices"][0]["delta"] for item in last[:-1]] == [{"content": "c"}, {}]
    assert last[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
