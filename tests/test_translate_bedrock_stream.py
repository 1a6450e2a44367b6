"""Bedrock streaming: a realistic ConverseStream replayed into OpenAI chunks."""

from __future__ import annotations

from typing import Any

from providers.translate.bedrock import ConverseStreamTranslator, converse_to_chat
from tests.support.bedrock import MODEL

# A ConverseStream as Bedrock sends it: text, then a tool call whose input arrives in fragments.
STREAM_EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Let me "}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "check."}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {
        "contentBlockStart": {
            "start": {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather"}},
            "contentBlockIndex": 1,
        }
    },
    {"contentBlockDelta": {"delta": {"toolUse": {"input": ""}}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": "Pa'}}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": 'ris"}'}}, "contentBlockIndex": 1}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"messageStop": {"stopReason": "tool_use"}},
    {"metadata": {"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}, "metrics": {"latencyMs": 321}}},
]
STREAM_AS_RESPONSE = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29},
}


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def replay(events: list[dict[str, Any]], include_usage: bool) -> list[dict[str, Any]]:
    translator = ConverseStreamTranslator(MODEL, "chatcmpl-s", 7, include_usage=include_usage)
    return [item for event in events for item in translator.feed(event)]


def test_stream_events_become_openai_chunks() -> None:
    assert replay(STREAM_EVENTS, include_usage=True) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "tooluse_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
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
    chunks = replay(STREAM_EVENTS, include_usage=False)
    deltas = [item["choices"][0]["delta"] for item in chunks]
    streamed_text = "".join(delta.get("content", "") for delta in deltas)
    streamed_arguments = "".join(
        call["function"]["arguments"] for delta in deltas for call in delta.get("tool_calls", [])
    )
    message = converse_to_chat(STREAM_AS_RESPONSE, model=MODEL, completion_id="chatcmpl-s", created=7)["choices"][0][
        "message"
    ]
    assert streamed_text == message["content"]
    assert streamed_arguments == message["tool_calls"][0]["function"]["arguments"]
    assert all("usage" not in item for item in chunks)


def test_stream_numbers_parallel_tool_calls_by_position() -> None:
    events: list[dict[str, Any]] = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t0", "name": "a"}}, "contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "b"}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 0}},
        {"internalServerException": {"message": "boom"}},
    ]
    calls = [item["choices"][0]["delta"]["tool_calls"][0] for item in replay(events, include_usage=False)[1:]]
    assert [(tool_call["index"], tool_call.get("id")) for tool_call in calls] == [
        (0, "t0"),
        (1, "t1"),
        (1, None),
        (0, None),
    ]


def test_stream_without_message_start_still_opens_with_the_role() -> None:
    chunks = replay([{"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}}], include_usage=False)
    assert [item["choices"][0]["delta"] for item in chunks] == [{"role": "assistant", "content": ""}, {"content": "Hi"}]
