"""OpenAI → Bedrock Converse requests: one table row per mapping rule, structured output, tool history, and the
refusals naming their field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.translate.bedrock import TranslationError, chat_to_converse
from providers.translate.bedrock_request import JSON_OBJECT_INSTRUCTION, JSON_SCHEMA_INSTRUCTION
from tests.support.bedrock import HI, HI_TURN, MODEL, PDF, PNG, WEATHER_SPEC, WEATHER_TOOL, call, chat, text, user

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
