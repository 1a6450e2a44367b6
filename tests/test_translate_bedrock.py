"""OpenAI ↔ Bedrock Converse and InvokeModel embedding translations: one table row per mapping rule, the refusals
naming their field, a multi-turn tool round trip, and a realistic ConverseStream replayed into OpenAI chunks."""

from __future__ import annotations

import base64
import json
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
from providers.translate.bedrock_request import JSON_OBJECT_INSTRUCTION, JSON_SCHEMA_INSTRUCTION

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
PDF = base64.b64encode(b"%PDF-1.7").decode()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},  # type: ignore[index]
    }
}


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def text(value: str) -> list[dict[str, Any]]:
    return [{"text": value}]


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


HI = user("Hi")
HI_TURN = {"role": "user", "content": text("Hi")}

# (name, OpenAI request, expected Converse body)
REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("plain user text", chat(HI), {"messages": [HI_TURN]}),
    (
        "system and developer messages gather into system, wherever they sit",
        chat(
            {"role": "system", "content": "Be brief."},
            HI,
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
        ),
        {"messages": [HI_TURN], "system": [{"text": "Be brief."}, {"text": "No emoji."}]},
    ),
    (
        "consecutive user messages merge; blank text is dropped",
        chat(HI, user([{"type": "text", "text": "  "}, {"type": "text", "text": "there"}])),
        {"messages": [{"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]}]},
    ),
    (
        "an assistant message with only blank text disappears, so the users around it merge",
        chat(HI, {"role": "assistant", "content": ""}, user("again")),
        {"messages": [{"role": "user", "content": [{"text": "Hi"}, {"text": "again"}]}]},
    ),
    (
        "assistant refusal parts are text",
        chat(HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}),
        {"messages": [HI_TURN, {"role": "assistant", "content": text("No.")}]},
    ),
    (
        "inference parameters",
        chat(HI, max_tokens=100, temperature=0.2, top_p=0.9, stop="END"),
        {
            "messages": [HI_TURN],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        },
    ),
    (
        "max_completion_tokens wins over max_tokens; stop as a list",
        chat(HI, max_tokens=100, max_completion_tokens=50, stop=["a", "b"]),
        {"messages": [HI_TURN], "inferenceConfig": {"maxTokens": 50, "stopSequences": ["a", "b"]}},
    ),
    (
        "data: image URL becomes inline bytes",
        chat(
            user(
                [
                    {"type": "text", "text": "What is it?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ]
            )
        ),
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"text": "What is it?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}],
                }
            ]
        },
    ),
    (
        "s3:// image URL becomes an s3Location",
        chat(user([{"type": "image_url", "image_url": {"url": "s3://bucket/cat.JPG"}}])),
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.JPG"}}}}
                    ],
                }
            ]
        },
    ),
    (
        "an inline PDF becomes a document with a name Converse accepts",
        chat(
            user(
                [
                    {
                        "type": "file",
                        "file": {"filename": "Q3 report_v2.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
                    }
                ]
            )
        ),
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"document": {"format": "pdf", "name": "Q3 report-v2", "source": {"bytes": PDF}}}],
                }
            ]
        },
    ),
    (
        "tools with tool_choice auto",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="auto"),
        {"messages": [HI_TURN], "toolConfig": {"tools": [WEATHER_SPEC], "toolChoice": {"auto": {}}}},
    ),
    (
        "tool_choice required is any",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="required"),
        {"messages": [HI_TURN], "toolConfig": {"tools": [WEATHER_SPEC], "toolChoice": {"any": {}}}},
    ),
    (
        "a named function is tool",
        chat(HI, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        {
            "messages": [HI_TURN],
            "toolConfig": {"tools": [WEATHER_SPEC], "toolChoice": {"tool": {"name": "get_weather"}}},
        },
    ),
    (
        "no tool_choice declares the tools only",
        chat(HI, tools=[WEATHER_TOOL]),
        {"messages": [HI_TURN], "toolConfig": {"tools": [WEATHER_SPEC]}},
    ),
    (
        "tool_choice none withholds the tools",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="none"),
        {"messages": [HI_TURN]},
    ),
    (
        "a tool without description or parameters gets an empty object schema",
        chat(HI, tools=[{"type": "function", "function": {"name": "now", "description": ""}}]),
        {
            "messages": [HI_TURN],
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
            },
        },
    ),
    (
        "json_object becomes a system instruction",
        chat(HI, response_format={"type": "json_object"}),
        {"messages": [HI_TURN], "system": [{"text": JSON_OBJECT_INSTRUCTION}]},
    ),
    (
        "json_schema becomes a system instruction carrying the schema, after the caller's system text",
        chat(
            {"role": "system", "content": "Be brief."},
            HI,
            response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}},
        ),
        {
            "messages": [HI_TURN],
            "system": [{"text": "Be brief."}, {"text": JSON_SCHEMA_INSTRUCTION + '{"type":"object"}'}],
        },
    ),
    ("response_format text changes nothing", chat(HI, response_format={"type": "text"}), {"messages": [HI_TURN]}),
]


@pytest.mark.parametrize(
    ("request_body", "expected"), [case[1:] for case in REQUEST_CASES], ids=[case[0] for case in REQUEST_CASES]
)
def test_chat_request_mapping(request_body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert chat_to_converse(request_body) == expected


def test_native_structured_output_sends_the_schema_as_a_string() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = chat(
        HI,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "description": "An answer", "schema": schema},
        },
    )
    body = chat_to_converse(request, native_structured_output=True)
    json_schema = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert body["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert json.loads(json_schema.pop("schema")) == schema
    assert json_schema == {"name": "answer", "description": "An answer"}
    assert "system" not in body


TOOL_HISTORY = [
    HI,
    {"role": "assistant", "content": None, "tool_calls": [call("tooluse_1", "get_weather", '{"city": "Paris"}')]},
    {"role": "tool", "tool_call_id": "tooluse_1", "content": "18C"},
]


def test_tool_history_keeps_tool_config_even_when_tool_choice_is_none() -> None:
    # Converse refuses toolUse/toolResult blocks without a toolConfig, so "none" cannot withhold the tools here.
    body = chat_to_converse(chat(*TOOL_HISTORY, tools=[WEATHER_TOOL], tool_choice="none"))
    assert body["toolConfig"] == {"tools": [WEATHER_SPEC]}


def test_tool_history_without_tools_declares_the_history_tools() -> None:
    body = chat_to_converse(chat(*TOOL_HISTORY))
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]
    }


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


def test_an_empty_tool_result_has_no_blank_text_block() -> None:
    history = [*TOOL_HISTORY[:2], {"role": "tool", "tool_call_id": "tooluse_1", "content": ""}]
    assert chat_to_converse(chat(*history))["messages"][2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": []}}],
    }


# (name, OpenAI request, param the error names)
ERROR_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no messages", chat(), "messages"),
    ("only a system message", chat({"role": "system", "content": "Be brief."}), "messages"),
    ("a message that is not an object", {"model": MODEL, "messages": ["Hi"]}, "messages[0]"),
    ("unknown role", chat({"role": "function", "content": "x"}), "messages[0].role"),
    (
        "http image URL",
        chat(
            HI,
            user(
                [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]
            ),
        ),
        "messages[1].content[1].image_url",
    ),
    (
        "data URL that is not base64",
        chat(user([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}])),
        "messages[0].content[0].image_url",
    ),
    (
        "data URL with broken base64",
        chat(user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}])),
        "messages[0].content[0].image_url",
    ),
    (
        "image format Bedrock does not read",
        chat(user([{"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PNG}"}}])),
        "messages[0].content[0].image_url",
    ),
    (
        "audio input",
        chat(user([{"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}}])),
        "messages[0].content[0].type",
    ),
    ("file by id", chat(user([{"type": "file", "file": {"file_id": "file-1"}}])), "messages[0].content[0].file"),
    (
        "document type Bedrock does not read",
        chat(user([{"type": "file", "file": {"file_data": f"data:application/zip;base64,{PDF}"}}])),
        "messages[0].content[0].file.file_data",
    ),
    (
        "image in a system message",
        chat({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "s3://b/k.png"}}]}),
        "messages[0].content[0].type",
    ),
    ("content neither string nor list", chat(user(42)), "messages[0].content"),
    (
        "tool call arguments that are not JSON",
        chat(HI, {"role": "assistant", "tool_calls": [call("c1", "f", "{oops")]}),
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "tool call arguments that are not an object",
        chat(HI, {"role": "assistant", "tool_calls": [call("c1", "f", "[1]")]}),
        "messages[1].tool_calls[0].function.arguments",
    ),
    ("tool message without tool_call_id", chat(HI, {"role": "tool", "content": "x"}), "messages[1].tool_call_id"),
    ("n above 1", chat(HI, n=2), "n"),
    ("max_tokens zero", chat(HI, max_tokens=0), "max_tokens"),
    ("temperature as text", chat(HI, temperature="hot"), "temperature"),
    ("stop of numbers", chat(HI, stop=[1]), "stop"),
    ("a non-function tool", chat(HI, tools=[{"type": "code_interpreter"}]), "tools[0].type"),
    ("a tool without name", chat(HI, tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
    ("required without tools", chat(HI, tool_choice="required"), "tool_choice"),
    (
        "a named function not among the tools",
        chat(HI, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "other"}}),
        "tool_choice.function.name",
    ),
    ("tool_choice of an unknown shape", chat(HI, tools=[WEATHER_TOOL], tool_choice="sometimes"), "tool_choice"),
    ("response_format of unknown type", chat(HI, response_format={"type": "yaml"}), "response_format.type"),
    (
        "json_schema without an object schema",
        chat(HI, response_format={"type": "json_schema", "json_schema": {"schema": []}}),
        "response_format.json_schema",
    ),
]


@pytest.mark.parametrize(
    ("request_body", "param"), [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_untranslatable_requests_name_the_field(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        chat_to_converse(request_body)
    assert caught.value.param == param
    assert isinstance(caught.value, ValueError)


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
