"""The inference gateway through the official SDKs, against the OpenAI, Bedrock and Vertex simulators.

The simulators share one deterministic behaviour, so the same request must come back as the same OpenAI-shaped
result whichever vendor served it: that is what proves each adapter's translation both ways.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import Portkey

from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.server import RunningPortico, run_portico

PROVIDERS = ["openai", "bedrock", "vertex-ai"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]


@dataclass
class Gateway:
    portico: RunningPortico
    virtual_keys: dict[str, str]
    simulators: dict[str, str]

    def client(self, **headers: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.portico.api, api_key=self.portico.admin_key, default_headers=headers, max_retries=0
        )

    def stats(self, name: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.simulators[name]}/_sim/stats").json())

    def reset(self, name: str) -> None:
        httpx.post(f"{self.simulators[name]}/_sim/reset")


def create_vk(portico: RunningPortico, body: dict[str, Any]) -> str:
    response = httpx.post(f"{portico.api}/virtual-keys", json=body, headers={"x-portkey-api-key": portico.admin_key})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["slug"])


@pytest.fixture(scope="module")
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        sims = {
            "openai": stack.enter_context(running_simulator("openai")),
            "bedrock": stack.enter_context(running_simulator("bedrock")),
            "vertex-ai": stack.enter_context(running_simulator("vertex")),
            "down": stack.enter_context(running_simulator("openai", fail_rate=1.0, fail_status=503)),
            "second": stack.enter_context(running_simulator("openai")),
            "throttled": stack.enter_context(
                running_simulator("openai", fail_rate=1.0, fail_status=429, retry_after=0.3)
            ),
        }
        settings = stack_settings(
            request,
            STACKS["sqlite-local"],
            tmp_path_factory.mktemp("gateway"),
            provider_endpoints={
                "openai": f"{sims['openai']}/v1",
                "bedrock": sims["bedrock"],
                "vertex-ai": sims["vertex-ai"],
            },
            custom_host_allowlist=["127.0.0.1"],
        )
        portico = stack.enter_context(run_portico(settings))
        keys = {
            "openai": create_vk(portico, {"name": "oa", "provider": "openai", "key": "sk-sim"}),
            "bedrock": create_vk(
                portico,
                {
                    "name": "br",
                    "provider": "bedrock",
                    "awsAccessKeyId": "AKIDSIM",
                    "awsSecretAccessKey": "secret",
                    "awsRegion": "us-east-1",
                },
            ),
            "vertex-ai": create_vk(
                portico,
                {
                    "name": "vx",
                    "provider": "vertex-ai",
                    "vertexProjectId": "sim-project",
                    "vertexRegion": "us-central1",
                    "key": "ya29.sim",
                },
            ),
        }
        for name in ("down", "second", "throttled"):
            keys[name] = create_vk(
                portico, {"name": name, "provider": "openai", "key": "sk", "customHost": f"{sims[name]}/v1"}
            )
        yield Gateway(portico, keys, sims)


MODELS = {"openai": "gpt-4o-mini", "bedrock": "anthropic.claude-3-haiku-20240307-v1:0", "vertex-ai": "gemini-1.5-flash"}
EMBEDDING_MODELS = {
    "openai": "text-embedding-3-small",
    "bedrock": "amazon.titan-embed-text-v2:0",
    "vertex-ai": "text-embedding-004",
}


def chat(gateway: Gateway, provider: str, **kwargs: Any) -> Any:
    client = gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys[provider]})
    return client.chat.completions.create(model=MODELS[provider], **kwargs)


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


def logged_rows(gateway: Gateway, trace_id: str, expected: int) -> list[dict[str, Any]]:
    """The request log rows of one trace, waiting for the background writer (it batches off the request path)."""
    import sqlite3

    database = gateway.portico.settings.resolved_database_url().split("///", 1)[1]
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(database) as connection:
            connection.row_factory = sqlite3.Row
            rows = [dict(r) for r in connection.execute("SELECT * FROM request_logs WHERE trace_id = ?", (trace_id,))]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_every_call_is_logged_with_its_outcome(gateway: Gateway) -> None:
    trace = f"trace-{time.time_ns()}"
    headers = {"x-portkey-trace-id": trace, "x-portkey-span-name": "unit", "x-portkey-metadata": '{"team": "search"}'}
    client = gateway.client(**{"x-portkey-virtual-key": gateway.virtual_keys["openai"], **headers})
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "log me please"}])
    streamed = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "log me too"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in streamed:
        pass
    refused = httpx.post(
        f"{gateway.portico.api}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-portkey-api-key": gateway.portico.admin_key, "x-portkey-virtual-key": "missing", **headers},
    )
    assert refused.status_code == 404

    rows = sorted(logged_rows(gateway, trace, 3), key=lambda r: (r["stream"], r["status"]))
    assert [(r["status"], r["stream"]) for r in rows] == [(200, 0), (404, 0), (200, 1)]
    plain, failed, stream = rows
    assert (plain["provider"], plain["virtual_key"], plain["model"]) == (
        "openai",
        gateway.virtual_keys["openai"],
        "gpt-4o-mini",
    )
    assert (plain["prompt_tokens"], plain["completion_tokens"]) == (3, 6)
    assert plain["cost"] == pytest.approx((3 * 0.15 + 6 * 0.60) / 1_000_000)
    assert json.loads(plain["metadata"]) == {"team": "search"} and plain["span_name"] == "unit"
    assert stream["completion_tokens"] == 6, "usage from the stream's usage chunk"
    assert (failed["error_code"], failed["provider"]) == ("unknown_virtual_key", None)


def test_malformed_metadata_header_is_refused(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.portico.api}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={
            "x-portkey-api-key": gateway.portico.admin_key,
            "x-portkey-virtual-key": gateway.virtual_keys["openai"],
            "x-portkey-metadata": "[1, 2]",
        },
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "x-portkey-metadata"


def custom_host_call(portico: RunningPortico, upstream: str) -> httpx.Response:
    return httpx.post(
        f"{portico.api}/chat/completions",
        json={"model": "local-llama", "messages": [{"role": "user", "content": "via custom host"}]},
        headers={
            "x-portkey-api-key": portico.admin_key,
            "x-portkey-provider": "openai",
            "authorization": "Bearer sk-local",
            "x-portkey-custom-host": f"{upstream}/v1",
        },
    )


def test_custom_host_on_loopback_is_reached_only_when_allowlisted(
    gateway: Gateway, portico_local: RunningPortico
) -> None:
    gateway.reset("second")
    allowed = custom_host_call(gateway.portico, gateway.simulators["second"])
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["choices"][0]["message"]["content"] == "Simulated reply to: via custom host"
    assert gateway.stats("second")["total"] == 1

    refused = custom_host_call(portico_local, gateway.simulators["second"])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unsafe_upstream"
    assert "PORTICO_CUSTOM_HOST_ALLOWLIST" in refused.json()["error"]["message"]
    assert gateway.stats("second")["total"] == 1, "the refused request never reached the upstream"


def test_simple_cache_answers_repeats_without_the_upstream(gateway: Gateway) -> None:
    gateway.reset("second")
    trace = f"cache-{time.time_ns()}"
    config = {"cache": {"mode": "simple", "max_age": 60}, "virtual_key": gateway.virtual_keys["second"]}
    question = [{"role": "user", "content": f"cache me {trace}"}]

    def ask(**headers: str) -> str:
        client = gateway.client(**{"x-portkey-config": json.dumps(config), "x-portkey-trace-id": trace, **headers})
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=question)
        return str(answer.choices[0].message.content)

    first, second = ask(), ask()
    assert first == second
    assert gateway.stats("second")["total"] == 1, "the repeat was answered from the cache"
    ask(**{"x-portkey-cache-namespace": "other"})
    assert gateway.stats("second")["total"] == 2, "another namespace is another cache"
    ask(**{"x-portkey-cache-force-refresh": "true"})
    assert gateway.stats("second")["total"] == 3, "force-refresh goes to the upstream"
    statuses = sorted(row["cache_status"] for row in logged_rows(gateway, trace, 4))
    assert statuses == ["HIT", "MISS", "MISS", "REFRESH"]


async def test_mcp_inference_and_admin_tools_never_show_secrets(gateway: Gateway) -> None:
    from tests.test_mcp import MODES, call_ok, connect

    secret = "sk-mcp-secret-that-must-not-come-back"
    for protocol in MODES:
        async with connect(gateway.portico, gateway.portico.admin_key, protocol) as client:
            answer = await call_ok(
                client,
                "chat",
                {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "over MCP"}],
                    "virtual_key": gateway.virtual_keys["bedrock"],
                },
            )
            assert answer["choices"][0]["message"]["content"] == "Simulated reply to: over MCP"

            results = [
                await client.call_tool(
                    "operations_call",
                    {"name": "virtual_keys_create", "arguments": {"name": "m", "provider": "openai", "key": secret}},
                ),
                await client.call_tool("operations_call", {"name": "virtual_keys_list", "arguments": {}}),
            ]
            slug = results[0].structured_content["data"]["slug"]  # type: ignore[index]
            results.append(
                await client.call_tool(
                    "operations_call", {"name": "virtual_keys_retrieve", "arguments": {"slug": slug}}
                )
            )
            for result in results:
                assert not result.is_error, result.content
                assert secret not in json.dumps(result.model_dump(mode="json"))


def test_workspace_provider_by_at_slug_routes_through_its_integration(gateway: Gateway) -> None:
    """`x-portkey-provider: @<slug>`: a provider granted to the workspace from an integration (and its model list)."""
    admin = {"x-portkey-api-key": gateway.portico.admin_key}
    api = gateway.portico.api
    created = httpx.post(
        f"{api}/integrations",
        headers=admin,
        json={"name": "OpenAI shared", "ai_provider_id": "openai", "key": "sk-int"},
    )
    slug = created.json()["slug"]
    grant = httpx.put(
        f"{api}/integrations/{slug}/workspaces",
        headers=admin,
        json={"workspaces": [{"id": "ws-default", "enabled": True}]},
    )
    assert grant.status_code == 200, grant.text
    models = httpx.put(
        f"{api}/integrations/{slug}/models",
        headers=admin,
        json={"allow_all_models": False, "models": [{"slug": "gpt-4o-mini", "enabled": True}]},
    )
    assert models.status_code == 200, models.text

    client = gateway.client(**{"x-portkey-provider": f"@{slug}"})
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "via integration"}]
    )
    assert answer.choices[0].message.content == "Simulated reply to: via integration"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "not allowed"}])
    assert refused.value.body["param"] == "model"  # type: ignore[index]


def test_realtime_websocket_is_proxied_with_the_official_client(gateway: Gateway) -> None:
    client = openai.OpenAI(
        base_url=gateway.portico.api,
        api_key=gateway.portico.admin_key,
        default_headers={"x-portkey-virtual-key": gateway.virtual_keys["openai"]},
        max_retries=0,
    )
    with client.realtime.connect(model="gpt-realtime") as connection:
        created = connection.recv()
        assert created.type == "session.created"
        connection.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hello over a socket"}],
                },
            }
        )  # type: ignore[typeddict-item]
        connection.send({"type": "response.create"})
        text, kinds = "", []
        for event in connection:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta  # type: ignore[union-attr]
            if event.type == "response.done":
                break
    assert text == "Simulated reply to: hello over a socket"
    assert kinds[0] == "conversation.item.created" and kinds[-1] == "response.done"


def test_realtime_refuses_a_provider_without_it(gateway: Gateway) -> None:
    import websockets.exceptions
    import websockets.sync.client as ws_client

    url = gateway.portico.api.replace("http://", "ws://") + "/realtime?model=m"
    headers = {"x-portkey-api-key": gateway.portico.admin_key, "x-portkey-virtual-key": gateway.virtual_keys["bedrock"]}
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        ws_client.connect(url, additional_headers=headers).close()
    response = refused.value.response
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "unsupported_capability" and "bedrock" in error["message"]


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
