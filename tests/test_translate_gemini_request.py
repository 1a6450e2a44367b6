"""OpenAI → Vertex AI Gemini requests: one table row per mapping rule, JSON Schema conversion, thought signature
placeholders on replayed tool calls, and refusals naming their field."""

from __future__ import annotations

from typing import Any

import pytest

from providers.translate.gemini import TranslationError, chat_to_gemini, to_gemini_schema
from providers.translate.gemini_request import THOUGHT_SIGNATURE_PLACEHOLDER
from tests.support.gemini import (
    HI,
    HI_TURN,
    PDF,
    PNG,
    WEATHER_DECLARATION,
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    WEATHER_TOOLS,
    call,
    chat,
    image,
    turn,
    user,
)

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
