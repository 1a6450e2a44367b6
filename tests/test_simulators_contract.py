"""The OpenAI, Bedrock and Vertex inference simulators over real HTTP (uvicorn on 127.0.0.1).

The shared deterministic behaviour, across the three vendors: the same conversation must give the same reply, tool
call and usage from each.
"""

from __future__ import annotations

import json

import pytest

from tests.support.simulators import (
    BEDROCK_AUTH,
    HTTP,
    OPENAI_AUTH,
    VENDORS,
    VERTEX_AUTH,
    WEATHER_ARGS,
    Conversation,
    _close_client,  # noqa: F401 - the fixture
    bedrock_body,
    chat,
    openai_body,
    urls_fixture,  # noqa: F401 - the fixture
    vertex_body,
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
