"""The inference gateway through the official SDKs, against the OpenAI, Bedrock and Vertex simulators: core routing.

The simulators share one deterministic behaviour, so the same request must come back as the same OpenAI-shaped
result whichever vendor served it: that is what proves each adapter's translation both ways.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.support.gateway import (
    EMBEDDING_MODELS,
    PROVIDERS,
    TOOLS,
    Gateway,
    chat,
    gateway_fixture,  # noqa: F401 - the fixture
)


def test_plain_chat_is_identical_across_providers(gateway: Gateway) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    results = {p: chat(gateway, p, messages=messages) for p in PROVIDERS}
    shapes = {
        p: (
            r.object,
            r.choices[0].message.role,
            r.choices[0].message.content,
            r.choices[0].finish_reason,
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
        )
        for p, r in results.items()
    }
    assert shapes["openai"][2] == "Simulated reply to: What is the capital of France?"
    assert shapes["openai"] == shapes["bedrock"] == shapes["vertex-ai"]
    for provider in PROVIDERS:
        assert gateway.stats(provider)["total"] >= 1, f"{provider} simulator was reached"


def test_streaming_is_identical_across_providers(gateway: Gateway) -> None:
    messages = [{"role": "user", "content": "Stream me some words please"}]
    seen = {}
    for provider in PROVIDERS:
        stream = chat(gateway, provider, messages=messages, stream=True, stream_options={"include_usage": True})
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.usage:
                usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        seen[provider] = (text, finish, usage)
    assert seen["openai"][0] == "Simulated reply to: Stream me some words please"
    assert seen["openai"] == seen["bedrock"] == seen["vertex-ai"]


def test_tool_calls_round_trip_on_every_provider(gateway: Gateway) -> None:
    for provider in PROVIDERS:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
        first = chat(gateway, provider, messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls", provider
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "sim", "days": 1})
        messages += [
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ]
        second = chat(gateway, provider, messages=messages, tools=TOOLS)
        assert second.choices[0].message.content == "Tool result received: sunny, 21C", provider


def test_streamed_tool_calls(gateway: Gateway) -> None:
    for provider in PROVIDERS:
        stream = chat(gateway, provider, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True)
        name, arguments = "", ""
        for chunk in stream:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or []:
                    name += delta.function.name or "" if delta.function else ""
                    arguments += delta.function.arguments or "" if delta.function else ""
        assert (name, json.loads(arguments)) == ("get_weather", {"city": "sim", "days": 1}), provider


def test_embeddings_are_identical_across_providers(gateway: Gateway) -> None:
    vectors = {}
    for provider in PROVIDERS:
        client = gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys[provider]})
        result = client.embeddings.create(model=EMBEDDING_MODELS[provider], input=["alpha", "beta"], dimensions=256)
        vectors[provider] = [item.embedding for item in result.data]
        assert len(vectors[provider]) == 2 and len(vectors[provider][0]) == 256
    assert vectors["openai"] == vectors["bedrock"] == vectors["vertex-ai"]


def portkey(gateway: Gateway, config: dict[str, Any]) -> Portkey:
    return Portkey(api_key=gateway.portico.admin_key, base_url=gateway.portico.api, config=config)


def test_fallback_moves_past_a_503(gateway: Gateway) -> None:
    gateway.reset("down")
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [503]},
        "targets": [{"virtual_key": gateway.virtual_keys["down"]}, {"virtual_key": gateway.virtual_keys["openai"]}],
    }
    answer = portkey(gateway, config).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "fall back"}]
    )
    assert answer.choices[0].message.content == "Simulated reply to: fall back"
    assert gateway.stats("down")["total"] == 1, "the first target was tried once"


def test_loadbalance_follows_the_weights(gateway: Gateway) -> None:
    gateway.reset("openai")
    gateway.reset("second")
    config = {
        "strategy": {"mode": "loadbalance"},
        "targets": [
            {"virtual_key": gateway.virtual_keys["openai"], "weight": 0.7},
            {"virtual_key": gateway.virtual_keys["second"], "weight": 0.3},
        ],
    }
    client = portkey(gateway, config)
    for _ in range(1000):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    first, second = gateway.stats("openai")["total"], gateway.stats("second")["total"]
    assert first + second == 1000
    assert abs(first / 1000 - 0.7) <= 0.05, (first, second)


def test_retry_waits_for_retry_after(gateway: Gateway) -> None:
    gateway.reset("throttled")
    config = {"retry": {"attempts": 2, "on_status_codes": [429]}, "virtual_key": gateway.virtual_keys["throttled"]}
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        portkey(gateway, config).with_options(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    elapsed = time.monotonic() - started
    assert "429" in str(failure.value)
    assert gateway.stats("throttled")["total"] == 3, "one try and two retries"
    # Two waits of the simulator's Retry-After (0.3 s each, sent as retry-after: 1 rounded up would be 2 s).
    assert elapsed >= 0.6


def test_bad_routing_input_is_refused(gateway: Gateway) -> None:
    url = f"{gateway.portico.api}/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    auth = {"x-portkey-api-key": gateway.portico.admin_key}
    cases = [
        ({**auth, "x-portkey-virtual-key": "no-such-key"}, 404, "x-portkey-virtual-key"),
        (auth, 400, "x-portkey-virtual-key"),
        ({**auth, "x-portkey-config": "{not json"}, 400, "x-portkey-config"),
        (
            {**auth, "x-portkey-config": '{"strategy": {"mode": "nope"}, "targets": [{"virtual_key": "a"}]}'},
            400,
            "x-portkey-config.strategy.mode",
        ),
        ({**auth, "x-portkey-provider": "made-up", "authorization": "Bearer sk"}, 400, "x-portkey-provider"),
    ]
    for headers, status, param in cases:
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == status, (headers, response.text)
        assert response.json()["error"]["param"] == param
    bedrock = {**auth, "x-portkey-virtual-key": gateway.virtual_keys["bedrock"]}
    two_choices = httpx.post(url, json={**body, "n": 2}, headers=bedrock)
    assert two_choices.status_code == 400 and two_choices.json()["error"]["param"] == "n"
    no_messages = httpx.post(
        url, json={"model": "m"}, headers={**auth, "x-portkey-virtual-key": gateway.virtual_keys["openai"]}
    )
    assert no_messages.status_code == 400 and no_messages.json()["error"]["param"] == "messages"


def test_fallback_skips_a_target_without_the_capability(gateway: Gateway) -> None:
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [503]},
        "targets": [{"virtual_key": gateway.virtual_keys["bedrock"]}, {"virtual_key": gateway.virtual_keys["openai"]}],
    }
    client = gateway.client(**{"x-portkey-config": json.dumps(config)})
    image = client.images.generate(model="dall-e-3", prompt="a lighthouse", response_format="b64_json")
    assert image.data and image.data[0].b64_json
    only_bedrock = gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys["bedrock"]})
    with pytest.raises(openai.BadRequestError) as refused:
        only_bedrock.images.generate(model="dall-e-3", prompt="a lighthouse")
    assert refused.value.body["code"] == "unsupported_capability"  # type: ignore[index]
