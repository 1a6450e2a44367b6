"""The inference gateway against the OpenAI, Bedrock and Vertex simulators: the module-scoped `gateway` fixture (one
Portico with a virtual key per simulator) and the helpers the gateway tests share.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

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


@pytest.fixture(scope="module", name="gateway")
def gateway_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
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
