"""The inference gateway against the simulators, beyond routing: request logging, custom hosts, the simple cache, MCP,
workspace providers and the realtime WebSocket proxy.
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.support.gateway import (
    Gateway,
    gateway_fixture,  # noqa: F401 - the fixture
    logged_rows,
)
from tests.support.server import RunningPortico


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
