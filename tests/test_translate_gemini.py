"""OpenAI ↔ Vertex AI Gemini translations: one table row per mapping rule, JSON Schema conversion, refusals naming
their field, a multi-turn tool round trip with thought signatures, and a realistic SSE stream replayed into chunks."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from providers.translate.gemini import (
    GeminiStreamTranslator,
    TranslationError,
    chat_to_gemini,
    embedding_predict_body,
    embedding_response,
    gemini_to_chat,
    to_gemini_schema,
)
from providers.translate.gemini_request import THOUGHT_SIGNATURE_PLACEHOLDER

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

# (name, OpenAI request, expected generateContent body)
REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("plain user text", chat(HI), {"contents": [HI_TURN]}),
    (
        "system and developer messages gather into systemInstruction",
        chat({"role": "system", "content": "Be brief."}, HI, {"role": "developer", "content": "No emoji."}),
        {"contents": [HI_TURN], "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "No emoji."}]}},
    ),
    (
        "assistant is model; consecutive roles merge; blank text is dropped",
        chat(HI, {"role": "assistant", "content": "Hello"}, {"role": "assistant", "content": " "}, user("Bye")),
        {"contents": [HI_TURN, turn("model", {"text": "Hello"}), turn("user", {"text": "Bye"})]},
    ),
    (
        "data: image becomes inlineData",
        chat(user([image(f"data:image/png;base64,{PNG}")])),
        {"contents": [turn("user", {"inlineData": {"mimeType": "image/png", "data": PNG}})]},
    ),
    (
        "gs:// image becomes fileData with a MIME type from the extension",
        chat(user([image("gs://bucket/cat.png")])),
        {"contents": [turn("user", {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}})]},
    ),
    (
        "https image without an extension is assumed jpeg",
        chat(user([{"type": "text", "text": "What?"}, image("https://img.test/photo?id=3")])),
        {
            "contents": [
                turn(
                    "user",
                    {"text": "What?"},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://img.test/photo?id=3"}},
                )
            ]
        },
    ),
    (
        "an inline file and audio become inlineData",
        chat(
            user(
                [
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
                    {"type": "input_audio", "input_audio": {"data": PNG, "format": "mp3"}},
                ]
            )
        ),
        {
            "contents": [
                turn(
                    "user",
                    {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
                    {"inlineData": {"mimeType": "audio/mp3", "data": PNG}},
                )
            ]
        },
    ),
    (
        "generation parameters",
        chat(
            HI,
            max_completion_tokens=64,
            temperature=0.5,
            top_p=0.8,
            stop=["END"],
            n=2,
            seed=7,
            presence_penalty=0.1,
            frequency_penalty=0.2,
        ),
        {
            "contents": [HI_TURN],
            "generationConfig": {
                "maxOutputTokens": 64,
                "temperature": 0.5,
                "topP": 0.8,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.2,
            },
        },
    ),
    (
        "json_object sets the response MIME type",
        chat(HI, response_format={"type": "json_object"}),
        {"contents": [HI_TURN], "generationConfig": {"responseMimeType": "application/json"}},
    ),
    (
        "json_schema adds the converted schema",
        chat(
            HI,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "weather", "strict": True, "schema": WEATHER_PARAMETERS},
            },
        ),
        {
            "contents": [HI_TURN],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": WEATHER_DECLARATION["parameters"],
            },
        },
    ),
    ("tools without tool_choice", chat(HI, tools=[WEATHER_TOOL]), {"contents": [HI_TURN], "tools": WEATHER_TOOLS}),
    (
        "tool_choice auto",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="auto"),
        {"contents": [HI_TURN], "tools": WEATHER_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}},
    ),
    (
        "tool_choice required is ANY",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="required"),
        {"contents": [HI_TURN], "tools": WEATHER_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
    ),
    (
        "tool_choice none is NONE, with the tools still declared",
        chat(HI, tools=[WEATHER_TOOL], tool_choice="none"),
        {"contents": [HI_TURN], "tools": WEATHER_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}},
    ),
    (
        "a named function is ANY with allowedFunctionNames",
        chat(HI, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        {
            "contents": [HI_TURN],
            "tools": WEATHER_TOOLS,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        },
    ),
    (
        "a parameterless tool omits parameters, which Vertex refuses as an empty OBJECT",
        chat(
            HI,
            tools=[
                {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
            ],
        ),
        {"contents": [HI_TURN], "tools": [{"functionDeclarations": [{"name": "now"}]}]},
    ),
]


@pytest.mark.parametrize(
    ("request_body", "expected"), [case[1:] for case in REQUEST_CASES], ids=[case[0] for case in REQUEST_CASES]
)
def test_chat_request_mapping(request_body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert chat_to_gemini(request_body) == expected


# (name, JSON Schema, expected Vertex Schema)
SCHEMA_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "keys Vertex refuses are stripped",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x",
            "type": "object",
            "additionalProperties": False,
            "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        },
        {
            "type": "OBJECT",
            "properties": {"tags": {"type": "ARRAY", "items": {"type": "STRING"}}},
            "propertyOrdering": ["tags"],
        },
    ),
    (
        "a nullable type list",
        {"type": ["integer", "null"], "minimum": 0, "exclusiveMaximum": 10},
        {"type": "INTEGER", "nullable": True, "minimum": 0},
    ),
    (
        "several types become anyOf",
        {"type": ["string", "number"]},
        {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
    ),
    (
        "local $refs are inlined, siblings kept",
        {
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Home"},
                "work": {"$ref": "#/definitions/Address"},
            },
            "$defs": {"Address": {"type": "object", "properties": {"zip": {"type": "string"}}}},
            "definitions": {"Address": {"type": "object", "properties": {"zip": {"type": "string"}}}},
        },
        {
            "type": "OBJECT",
            "properties": {
                "home": {
                    "type": "OBJECT",
                    "properties": {"zip": {"type": "STRING"}},
                    "propertyOrdering": ["zip"],
                    "description": "Home",
                },
                "work": {"type": "OBJECT", "properties": {"zip": {"type": "STRING"}}, "propertyOrdering": ["zip"]},
            },
            "propertyOrdering": ["home", "work"],
        },
    ),
    (
        "oneOf is anyOf; const is a one-value enum; unknown formats drop",
        {"oneOf": [{"const": "a"}, {"type": "string", "format": "email"}, {"type": "string", "format": "date-time"}]},
        {"anyOf": [{"enum": ["a"]}, {"type": "STRING"}, {"type": "STRING", "format": "date-time"}]},
    ),
    (
        "allOf merges into its parent",
        {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}}], "description": "d"},
        {"type": "OBJECT", "properties": {"a": {"type": "BOOLEAN"}}, "propertyOrdering": ["a"], "description": "d"},
    ),
    (
        "an explicit propertyOrdering is kept",
        {"type": "object", "properties": {"a": {}, "b": {}}, "propertyOrdering": ["b", "a"]},
        {"type": "OBJECT", "properties": {"a": {}, "b": {}}, "propertyOrdering": ["b", "a"]},
    ),
]


@pytest.mark.parametrize(
    ("schema", "expected"), [case[1:] for case in SCHEMA_CASES], ids=[case[0] for case in SCHEMA_CASES]
)
def test_schema_conversion(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_gemini_schema(schema, "response_format.json_schema.schema") == expected


@pytest.mark.parametrize(
    "schema",
    [
        {
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        },
        {"type": "object", "properties": {"a": {"$ref": "https://example.com/schema"}}},
        {"type": "object", "properties": {"a": "string"}},
    ],
    ids=["recursive", "remote reference", "subschema not an object"],
)
def test_schema_conversion_refusals_name_the_field(schema: dict[str, Any]) -> None:
    request = chat(HI, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    with pytest.raises(TranslationError) as caught:
        chat_to_gemini(request)
    assert caught.value.param == "response_format.json_schema.schema"


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


def test_tool_calls_from_another_model_get_the_signature_placeholder_on_the_first_call_only() -> None:
    request = chat(
        HI,
        {"role": "assistant", "content": "Sure.", "tool_calls": [call("a", "f", "{}"), call("b", "g", '{"x": 1}')]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": "2"},
    )
    assert chat_to_gemini(request)["contents"][1] == turn(
        "model",
        {"text": "Sure."},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": THOUGHT_SIGNATURE_PLACEHOLDER},
        {"functionCall": {"name": "g", "args": {"x": 1}}},
    )


def test_repeated_call_ids_pair_with_the_latest_call() -> None:
    # gemini_to_chat numbers calls from call_0 in every response, so ids repeat across turns.
    request = chat(
        HI,
        {"role": "assistant", "tool_calls": [call("call_0", "first", "{}")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "1"},
        {"role": "assistant", "tool_calls": [call("call_0", "second", "{}")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "2"},
    )
    names = [
        part["functionResponse"]["name"]
        for content in chat_to_gemini(request)["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    ]
    assert names == ["first", "second"]


# (name, OpenAI request, param the error names)
ERROR_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no messages", chat(), "messages"),
    ("only a system message", chat({"role": "system", "content": "Be brief."}), "messages"),
    ("unknown role", chat({"role": "function", "content": "x"}), "messages[0].role"),
    ("plain http image", chat(HI, user([image("http://img.test/a.png")])), "messages[1].content[0].image_url"),
    ("image_url without url", chat(user([{"type": "image_url", "image_url": {}}])), "messages[0].content[0].image_url"),
    (
        "tool result for an unknown call",
        chat(HI, {"role": "tool", "tool_call_id": "nope", "content": "x"}),
        "messages[1].tool_call_id",
    ),
    (
        "audio in an unsupported format",
        chat(user([{"type": "input_audio", "input_audio": {"data": PNG, "format": "flac"}}])),
        "messages[0].content[0].input_audio.format",
    ),
    (
        "an image in an assistant message",
        chat(HI, {"role": "assistant", "content": [image("gs://b/k.png")]}),
        "messages[1].content[0].type",
    ),
    ("a text part without text", chat(user([{"type": "text"}])), "messages[0].content[0].text"),
    (
        "tool call without id",
        chat(
            HI,
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        ),
        "messages[1].tool_calls[0].id",
    ),
    ("n zero", chat(HI, n=0), "n"),
    (
        "invalid tool parameters schema",
        chat(
            HI,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": []}}}],
        ),
        "tools[0].function.parameters",
    ),
]


@pytest.mark.parametrize(
    ("request_body", "param"), [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_untranslatable_requests_name_the_field(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        chat_to_gemini(request_body)
    assert caught.value.param == param


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
