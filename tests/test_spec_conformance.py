"""REST responses checked against the spec's own schemas, and the registry checked against the spec's operations.

`tests/spec/portkey-openapi.yaml` is a copy of the project's spec (shared/spec). Each implemented operation is
called once for real and its 200 body validated with an OpenAPI 3.0 schema validator.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from portico.catalogue import load_registry
from portico.coverage import spec_operations, unknown_operations
from providers.simulators.app import running_simulator
from tests.conftest import STACKS, stack_settings
from tests.support.server import RunningPortico, run_portico

SPEC_PATH = Path(__file__).with_name("spec") / "portkey-openapi.yaml"


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def response_schema(method: str, path: str) -> dict[str, Any] | None:
    responses = spec()["paths"][path][method.lower()]["responses"]
    content = responses.get("200", {}).get("content", {}).get("application/json")
    if not content or "schema" not in content:
        return None
    # Resolve `#/components/...` references against the whole spec.
    return {**content["schema"], "components": spec()["components"]}


# Defects in the spec itself (not in Portico), each matched narrowly: the validator's message and where it points.
# - `ModelIdsResponses` is an anyOf holding only an enum of four model ids (upstream OpenAI's has a plain string
#   beside it), so any other model name fails at `model`;
# - `OutputItem` and `ItemResource` have a discriminator on `type` without a mapping, so the validator looks for a
#   schema named after the value (`#/components/schemas/message`), which does not exist (it is `OutputMessage` /
#   `InputMessageResource`): every item of `output` / `data` fails.
UNRESOLVABLE_DISCRIMINATOR = "could not be resolved"
SPEC_DEFECTS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("POST", "/responses"): [
        ("is not valid under any of the given schemas", "model"),
        (UNRESOLVABLE_DISCRIMINATOR, "output"),
    ],
    ("GET", "/responses/{response_id}"): [
        ("is not valid under any of the given schemas", "model"),
        (UNRESOLVABLE_DISCRIMINATOR, "output"),
    ],
    ("GET", "/responses/{response_id}/input_items"): [(UNRESOLVABLE_DISCRIMINATOR, "data")],
}


def known_defect(method: str, path: str, error: Any) -> bool:
    at = list(error.absolute_path)
    return any(marker in error.message and at[:1] == [field] for marker, field in SPEC_DEFECTS.get((method, path), []))


def assert_conforms(method: str, path: str, body: Any) -> None:
    schema = response_schema(method, path)
    assert schema is not None, f"the spec has no JSON schema for {method} {path}"
    errors = sorted((e for e in OAS30Validator(schema).iter_errors(body) if not known_defect(method, path, e)), key=str)
    assert not errors, f"{method} {path}: " + "; ".join(e.message for e in errors[:5])


def test_registry_matches_the_spec() -> None:
    registry = load_registry()
    assert unknown_operations(registry) == []
    assert len(spec_operations()) == 224
    assert {(op["method"], op["path"]) for op in spec_operations()} == {
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }


@pytest.fixture(scope="module")
def portico_with_upstream(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPortico]:
    with running_simulator("openai") as simulator:
        settings = stack_settings(
            request,
            STACKS["sqlite-local"],
            tmp_path_factory.mktemp("conformance"),
            provider_endpoints={"openai": f"{simulator}/v1"},
        )
        with run_portico(settings, worker=True) as running:
            yield running


# Exercised by `test_integrations_and_providers_answer_per_their_schemas`, which checks it calls each one; the test
# below covers every other implemented operation, so together they cover the registry.
INTEGRATION_OPERATIONS = {
    ("GET", "/integrations"),
    ("POST", "/integrations"),
    ("GET", "/integrations/{slug}"),
    ("PUT", "/integrations/{slug}"),
    ("DELETE", "/integrations/{slug}"),
    ("GET", "/integrations/{slug}/models"),
    ("PUT", "/integrations/{slug}/models"),
    ("DELETE", "/integrations/{slug}/models"),
    ("GET", "/integrations/{slug}/workspaces"),
    ("PUT", "/integrations/{slug}/workspaces"),
    ("GET", "/providers"),
    ("POST", "/providers"),
    ("GET", "/providers/{slug}"),
    ("PUT", "/providers/{slug}"),
    ("DELETE", "/providers/{slug}"),
}


def caller(portico: RunningPortico, checked: set[tuple[str, str]]) -> Callable[..., Any]:
    """`call(method, spec_path, url, headers=None, **httpx_kwargs)`: as the admin, expect 200, check the body
    against the spec's schema for `spec_path`, record the operation in `checked`, return the JSON body."""
    admin = {"x-portkey-api-key": portico.admin_key}

    def call(method: str, spec_path: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = httpx.request(
            method, f"{portico.api}{url}", headers={**admin, **(headers or {})}, timeout=30, **kwargs
        )
        assert response.status_code == 200, f"{method} {url}: {response.status_code} {response.text}"
        # The spec gives no body schema for a few operations (DELETE /admin/workspaces/{workspaceId}).
        if response.headers["content-type"].startswith("application/json") and response_schema(method, spec_path):
            assert_conforms(method, spec_path, response.json())
        checked.add((method, spec_path))
        return response.json() if response.headers["content-type"].startswith("application/json") else None

    return call


def test_every_implemented_operation_answers_per_its_schema(portico_with_upstream: RunningPortico) -> None:
    checked: set[tuple[str, str]] = set()
    call = caller(portico_with_upstream, checked)

    workspace = call("POST", "/admin/workspaces", "/admin/workspaces", json={"name": "conformance"})
    ws = workspace["id"]
    call("GET", "/admin/workspaces", "/admin/workspaces")
    call("GET", "/admin/workspaces/{workspaceId}", f"/admin/workspaces/{ws}")
    call("PUT", "/admin/workspaces/{workspaceId}", f"/admin/workspaces/{ws}", json={"description": "d"})

    key = call(
        "POST",
        "/api-keys/{type}/{sub-type}",
        "/api-keys/workspace/service",
        json={"name": "k", "workspace_id": ws, "scopes": ["completions.write"]},
    )
    call("GET", "/api-keys", "/api-keys")
    call("GET", "/api-keys/{id}", f"/api-keys/{key['id']}")
    call("PUT", "/api-keys/{id}", f"/api-keys/{key['id']}", json={"name": "k2"})

    uploaded = call("POST", "/files", "/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"abc")})
    call("GET", "/files", "/files")
    call("GET", "/files/{file_id}", f"/files/{uploaded['id']}")
    call("GET", "/files/{file_id}/content", f"/files/{uploaded['id']}/content")
    call("DELETE", "/files/{file_id}", f"/files/{uploaded['id']}")

    call("DELETE", "/api-keys/{id}", f"/api-keys/{key['id']}")
    call("DELETE", "/admin/workspaces/{workspaceId}", f"/admin/workspaces/{ws}")

    slug = call("POST", "/virtual-keys", "/virtual-keys", json={"name": "vk", "provider": "openai", "key": "sk"})
    vk = slug["data"]["slug"]
    call("GET", "/virtual-keys", "/virtual-keys")
    call("GET", "/virtual-keys/{slug}", f"/virtual-keys/{vk}")
    call("PUT", "/virtual-keys/{slug}", f"/virtual-keys/{vk}", json={"note": "n"})

    routed = {"x-portkey-virtual-key": vk}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    call("POST", "/chat/completions", "/chat/completions", headers=routed, json=chat)
    embed = {"model": "text-embedding-3-small", "input": "hi"}
    call("POST", "/embeddings", "/embeddings", headers=routed, json=embed)

    response = call("POST", "/responses", "/responses", headers=routed, json={"model": "gpt-4o-mini", "input": "hi"})
    call("GET", "/responses/{response_id}", f"/responses/{response['id']}")
    call("GET", "/responses/{response_id}/input_items", f"/responses/{response['id']}/input_items")
    call("DELETE", "/responses/{response_id}", f"/responses/{response['id']}")

    check_batches(call, routed)
    check_fine_tuning(call, routed)

    config = call("POST", "/configs", "/configs", json={"name": "c", "config": {"virtual_key": vk}})
    config_slug = config["data"]["slug"]
    call("GET", "/configs", "/configs")
    call("GET", "/configs/{slug}", f"/configs/{config_slug}")
    call(
        "PUT",
        "/configs/{slug}",
        f"/configs/{config_slug}",
        json={"config": {"virtual_key": vk, "retry": {"attempts": 1}}},
    )
    call("GET", "/configs/{slug}/versions", f"/configs/{config_slug}/versions")
    call("DELETE", "/configs/{slug}", f"/configs/{config_slug}")
    call("DELETE", "/virtual-keys/{slug}", f"/virtual-keys/{vk}")

    # WebSocket operations (GET /realtime) answer a protocol upgrade, not a JSON body: tested in test_gateway_extras.py.
    implemented = (
        {op.spec_key for op in load_registry().rest_operations() if not op.websocket}
        - INTEGRATION_OPERATIONS
        - MEDIA_OPERATIONS
    )
    assert checked == implemented, f"operations not exercised here: {implemented - checked}"


def check_batches(call: Callable[..., Any], routed: dict[str, str]) -> None:
    """The five batch operations, on a managed batch that runs to completion and one cancelled at once."""
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": chat}
    source = call(
        "POST", "/files", "/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", json.dumps(line).encode())}
    )
    body = {"input_file_id": source["id"], "endpoint": "/v1/chat/completions", "completion_window": "immediate"}
    batch = call("POST", "/batches", "/batches", headers=routed, json=body)
    deadline = time.monotonic() + 60
    while batch["status"] not in ("completed", "failed", "expired", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = call("GET", "/batches/{batch_id}", f"/batches/{batch['id']}")
    assert batch["status"] == "completed", batch
    call("GET", "/batches", "/batches")
    output = call("GET", "/batches/{batch_id}/output", f"/batches/{batch['id']}/output")
    assert output is None  # JSONL bytes, not a JSON body: checked by the batch tests
    second = call("POST", "/batches", "/batches", headers=routed, json=body)
    call("POST", "/batches/{batch_id}/cancel", f"/batches/{second['id']}/cancel")


def check_fine_tuning(call: Callable[..., Any], routed: dict[str, str]) -> None:
    """The six fine-tuning operations, on an OpenAI job that is cancelled while it validates."""
    example = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    data = "".join(json.dumps(example) + "\n" for _ in range(10)).encode()
    source = call("POST", "/files", "/files", data={"purpose": "fine-tune"}, files={"file": ("t.jsonl", data)})
    body = {"model": "gpt-4o-mini-2024-07-18", "training_file": source["id"], "suffix": "conf"}
    job = call("POST", "/fine_tuning/jobs", "/fine_tuning/jobs", headers=routed, json=body)
    by_id = f"/fine_tuning/jobs/{job['id']}"
    call("GET", "/fine_tuning/jobs", "/fine_tuning/jobs")
    call("GET", "/fine_tuning/jobs/{fine_tuning_job_id}", by_id)
    call("GET", "/fine_tuning/jobs/{fine_tuning_job_id}/events", f"{by_id}/events")
    call("GET", "/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", f"{by_id}/checkpoints")
    cancelled = call("POST", "/fine_tuning/jobs/{fine_tuning_job_id}/cancel", f"{by_id}/cancel")
    assert cancelled["status"] == "cancelled", cancelled


def test_integrations_and_providers_answer_per_their_schemas(portico_with_upstream: RunningPortico) -> None:
    checked: set[tuple[str, str]] = set()
    call = caller(portico_with_upstream, checked)

    # No configuration fields: the spec's `configurations` is a oneOf over ten schemas that no object can match
    # exactly once (three have no required field), so an integration with settings could not conform. Portico
    # leaves an empty `configurations` out.
    created = call(
        "POST", "/integrations", "/integrations", json={"name": "conf", "ai_provider_id": "openai", "key": "sk-k"}
    )
    slug = created["slug"]
    call("GET", "/integrations", "/integrations")
    call("GET", "/integrations/{slug}", f"/integrations/{slug}")
    call("PUT", "/integrations/{slug}", f"/integrations/{slug}", json={"description": "d"})

    pricing = {"type": "static", "pay_as_you_go": {"request_token": {"price": 0.1}, "response_token": {"price": 0.2}}}
    models = [
        {"slug": "gpt-4o-mini", "enabled": True},
        {"slug": "ft", "enabled": True, "is_custom": True, "pricing_config": pricing},
    ]
    call("PUT", "/integrations/{slug}/models", f"/integrations/{slug}/models", json={"models": models})
    call("GET", "/integrations/{slug}/models", f"/integrations/{slug}/models")
    call("DELETE", "/integrations/{slug}/models", f"/integrations/{slug}/models", params={"slugs": "ft"})

    # The admin key acts in the default workspace: grant it access (which adds a default provider there).
    limits = {
        "usage_limits": [{"credit_limit": 5, "periodic_reset": "monthly"}],
        "rate_limits": [{"unit": "rpm", "value": 9}],
    }
    grant = {"workspaces": [{"id": "ws-default", "enabled": True, **limits}]}
    call("PUT", "/integrations/{slug}/workspaces", f"/integrations/{slug}/workspaces", json=grant)
    call("GET", "/integrations/{slug}/workspaces", f"/integrations/{slug}/workspaces")

    provider = {
        "name": "p",
        "integration_id": slug,
        "slug": "conf-p",
        "usage_limits": {"credit_limit": 3},
        "rate_limits": {"unit": "rph", "value": 7},
    }
    call("POST", "/providers", "/providers", json=provider)
    call("GET", "/providers", "/providers")
    call("GET", "/providers/{slug}", "/providers/conf-p")
    call("PUT", "/providers/{slug}", "/providers/conf-p", json={"note": "n", "expires_at": "2099-01-01T00:00:00Z"})
    call("DELETE", "/providers/{slug}", "/providers/conf-p")
    call("DELETE", "/integrations/{slug}", f"/integrations/{slug}")

    assert checked == INTEGRATION_OPERATIONS


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/files/{file_id}", {"id": 1, "object": "file"}),
        ("GET", "/files", {"object": "list"}),
        ("POST", "/responses", {"id": "resp_1", "object": "response", "status": "done", "output": "x"}),
    ],
)
def test_the_validator_does_reject_wrong_shapes(method: str, path: str, body: dict[str, Any]) -> None:
    """Guards the test above against a validator (or a defect filter) that accepts anything."""
    with pytest.raises(AssertionError):
        assert_conforms(method, path, body)


# Exercised by `test_gateway_media_and_models_answer_per_their_schemas`, which checks it calls each one.
MEDIA_OPERATIONS = {
    ("POST", "/completions"),
    ("POST", "/moderations"),
    ("POST", "/images/generations"),
    ("POST", "/images/edits"),
    ("POST", "/images/variations"),
    ("POST", "/audio/speech"),
    ("POST", "/audio/transcriptions"),
    ("POST", "/audio/translations"),
    ("GET", "/models"),
    ("GET", "/models/{model}"),
    ("DELETE", "/models/{model}"),
}


def test_gateway_media_and_models_answer_per_their_schemas(portico_with_upstream: RunningPortico) -> None:
    from providers.simulators.openai_models import FINE_TUNED

    portico = portico_with_upstream
    checked: set[tuple[str, str]] = set()
    call = caller(portico, checked)
    created = httpx.post(
        f"{portico.api}/virtual-keys",
        json={"name": "media", "provider": "openai", "key": "sk"},
        headers={"x-portkey-api-key": portico.admin_key},
    )
    routed = {"x-portkey-virtual-key": created.json()["data"]["slug"]}
    image = {"image": ("in.png", b"\x89PNG picture")}
    audio = {"file": ("talk.wav", b"RIFF audio")}

    call("POST", "/completions", "/completions", routed, json={"model": "gpt-3.5-turbo-instruct", "prompt": "hi"})
    call("POST", "/moderations", "/moderations", routed, json={"input": ["kill it", "fine"]})
    generate = {"prompt": "a dog", "size": "16x16", "response_format": "b64_json"}
    call("POST", "/images/generations", "/images/generations", routed, json=generate)
    call("POST", "/images/edits", "/images/edits", routed, data={"prompt": "hat", "size": "16x16"}, files=image)
    call("POST", "/images/variations", "/images/variations", routed, data={"size": "16x16"}, files=image)
    call("POST", "/audio/speech", "/audio/speech", routed, json={"model": "tts-1", "input": "hi", "voice": "alloy"})
    call("POST", "/audio/transcriptions", "/audio/transcriptions", routed, data={"model": "whisper-1"}, files=audio)
    # Plain `json` only: a verbose_json answer also satisfies the plain schema, so the spec's oneOf cannot hold.
    call("POST", "/audio/translations", "/audio/translations", routed, data={"model": "whisper-1"}, files=audio)
    call("GET", "/models", "/models")  # no route: every virtual key's models
    call("GET", "/models", "/models", routed)
    call("GET", "/models/{model}", "/models/gpt-4o-mini", routed)
    call("DELETE", "/models/{model}", f"/models/{FINE_TUNED}", routed)

    assert checked == MEDIA_OPERATIONS
