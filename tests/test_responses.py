"""The Responses API through the official `openai` SDK, on each provider's simulator: create, continue with
previous_response_id (Portico keeps the state, so Bedrock and Vertex can too), function calls, retrieve, input
items, delete, and workspace isolation."""

from __future__ import annotations

import openai
import pytest

from tests.support.gateway import MODELS, PROVIDERS, Gateway, gateway_fixture  # noqa: F401 - the module fixture
from tests.support.keys import create_workspace_key

TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}


def client_for(gateway: Gateway, provider: str) -> openai.OpenAI:
    return gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys[provider]})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_continue_and_inspect(gateway: Gateway, provider: str) -> None:
    client = client_for(gateway, provider)
    first = client.responses.create(model=MODELS[provider], input="Name three rivers", instructions="Be brief.")
    assert first.status == "completed" and first.object == "response"
    assert first.output_text == "Simulated reply to: Name three rivers"
    assert first.usage is not None and first.usage.input_tokens == 5  # "Be brief." + "Name three rivers"

    second = client.responses.create(model=MODELS[provider], input="And two lakes", previous_response_id=first.id)
    assert second.output_text == "Simulated reply to: And two lakes"
    # The earlier turn was replayed: its user text and the model's reply count as input now (no instructions).
    assert second.usage is not None and second.usage.input_tokens == 3 + 6 + 3

    assert client.responses.retrieve(first.id).output_text == first.output_text
    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]
    assert items.data[0].content[0].text == "And two lakes"  # type: ignore[union-attr]

    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODELS[provider], input="more", previous_response_id=first.id)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_function_calls_round_trip(gateway: Gateway, provider: str) -> None:
    client = client_for(gateway, provider)
    asked = client.responses.create(model=MODELS[provider], input="Where is my order?", tools=[TOOL])  # type: ignore[list-item]
    call = next(item for item in asked.output if item.type == "function_call")
    assert (call.name, call.arguments) == ("lookup_order", '{"order_id": "sim"}')
    answered = client.responses.create(
        model=MODELS[provider],
        previous_response_id=asked.id,
        tools=[TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "shipped yesterday"}],
    )
    assert answered.output_text == "Tool result received: shipped yesterday"


def test_responses_stay_in_their_workspace(gateway: Gateway) -> None:
    mine = client_for(gateway, "openai").responses.create(model="gpt-4o-mini", input="private")
    other = create_workspace_key(gateway.portico)
    stranger = openai.OpenAI(base_url=gateway.portico.api, api_key=other.key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(mine.id)


def test_bad_requests_name_the_field(gateway: Gateway) -> None:
    client = client_for(gateway, "openai")
    with pytest.raises(openai.BadRequestError) as no_input:
        client.responses.create(model="gpt-4o-mini", input=[])
    assert no_input.value.body["param"] == "input"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad_tool:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{"type": "web_search_preview"}])
    assert bad_tool.value.body["param"] == "tools[0].type"  # type: ignore[index]
