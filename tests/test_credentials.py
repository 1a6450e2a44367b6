"""Virtual keys and routing configs through the `portkey-ai` SDK: secrets sealed and never echoed, validation that
names the field, versions, and workspace isolation."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from portkey_ai import Portkey

from tests.support.keys import create_workspace_key
from tests.support.server import RunningPortico

SECRET = "sk-test-secret-value-that-must-never-be-echoed"


def as_dict(response: Any) -> dict[str, Any]:
    return response.model_dump() if hasattr(response, "model_dump") else dict(response)


@pytest.fixture(scope="module")
def admin(portico_local: RunningPortico) -> Portkey:
    return Portkey(api_key=portico_local.admin_key, base_url=portico_local.api)


def raw(portico: RunningPortico, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{portico.api}{path}", headers={"x-portkey-api-key": key}, timeout=30, **kwargs)


def test_virtual_key_secrets_are_sealed_and_never_returned(portico_local: RunningPortico, admin: Portkey) -> None:
    created = as_dict(admin.virtual_keys.create(name="OpenAI prod", provider="openai", key=SECRET, note="n"))
    slug = created["data"]["slug"]
    assert slug.startswith("openai-prod-")

    for response in (
        raw(portico_local, "GET", f"/virtual-keys/{slug}", portico_local.admin_key),
        raw(portico_local, "GET", "/virtual-keys", portico_local.admin_key),
    ):
        assert response.status_code == 200 and SECRET not in response.text
    fetched = raw(portico_local, "GET", f"/virtual-keys/{slug}", portico_local.admin_key).json()
    assert (fetched["provider"], fetched["name"], fetched["object"]) == ("openai", "OpenAI prod", "virtual-key")

    database = portico_local.settings.resolved_database_url().split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT sealed_secrets FROM virtual_keys WHERE slug = ?", (slug,)).fetchone()[0]
    assert SECRET not in stored and stored.startswith("gAAAA"), "sealed with Fernet"

    rotated = raw(portico_local, "PUT", f"/virtual-keys/{slug}", portico_local.admin_key, json={"key": "sk-new"})
    assert rotated.status_code == 200 and "sk-new" not in rotated.text
    assert raw(portico_local, "DELETE", f"/virtual-keys/{slug}", portico_local.admin_key).status_code == 200
    assert raw(portico_local, "GET", f"/virtual-keys/{slug}", portico_local.admin_key).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "provider": "nonsense", "key": "k"}, "provider"),
        ({"name": "x", "provider": "openai"}, "key"),
        ({"name": "x", "provider": "bedrock", "awsAccessKeyId": "A", "awsSecretAccessKey": "S"}, "awsRegion"),
        ({"name": "x", "provider": "vertex-ai", "vertexRegion": "us-central1"}, "vertexProjectId"),
        ({"name": "x", "provider": "openai", "key": "k", "awsRegoin": "typo"}, "awsRegoin"),
        ({"provider": "openai", "key": "k"}, "name"),
    ],
)
def test_virtual_key_validation_names_the_field(
    portico_local: RunningPortico, body: dict[str, Any], param: str
) -> None:
    response = raw(portico_local, "POST", "/virtual-keys", portico_local.admin_key, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_provider_settings_are_shown_but_secrets_are_not(portico_local: RunningPortico) -> None:
    body = {
        "name": "bedrock",
        "provider": "bedrock",
        "awsAccessKeyId": "AKIDEXAMPLE",
        "awsSecretAccessKey": "wJalrXUtnFEMI/K7MDENG",
        "awsRegion": "us-east-1",
        "awsRoleArn": "arn:aws:iam::123456789012:role/batch",
    }
    created = raw(portico_local, "POST", "/virtual-keys", portico_local.admin_key, json=body)
    slug = created.json()["data"]["slug"]
    fetched = raw(portico_local, "GET", f"/virtual-keys/{slug}", portico_local.admin_key)
    assert fetched.json()["model_config"] == {"awsRegion": "us-east-1", "awsRoleArn": body["awsRoleArn"]}
    assert "wJalrXUtnFEMI" not in fetched.text and "AKIDEXAMPLE" not in fetched.text


def test_virtual_keys_stay_in_their_workspace(portico_local: RunningPortico) -> None:
    scopes = ("completions.write", "virtual_keys.create", "virtual_keys.read", "virtual_keys.list")
    a, b = create_workspace_key(portico_local, scopes), create_workspace_key(portico_local, scopes)
    created = raw(portico_local, "POST", "/virtual-keys", a.key, json={"name": "a", "provider": "openai", "key": "k"})
    slug = created.json()["data"]["slug"]
    assert raw(portico_local, "GET", f"/virtual-keys/{slug}", b.key).status_code == 404
    assert raw(portico_local, "GET", "/virtual-keys", b.key).json()["data"] == []
    assert [k["slug"] for k in raw(portico_local, "GET", "/virtual-keys", a.key).json()["data"]] == [slug]


def test_config_versions(portico_local: RunningPortico, admin: Portkey) -> None:
    first = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b"}]}
    created = as_dict(admin.configs.create(name="Fallback", config=first))
    slug = created["data"]["slug"]

    second = {"virtual_key": "c", "retry": {"attempts": 2}}
    assert (
        raw(portico_local, "PUT", f"/configs/{slug}", portico_local.admin_key, json={"config": second}).status_code
        == 200
    )
    current = raw(portico_local, "GET", f"/configs/{slug}", portico_local.admin_key).json()["data"]
    assert current["config"] == second and current["slug"] == slug

    versions = raw(portico_local, "GET", f"/configs/{slug}/versions", portico_local.admin_key).json()
    assert versions["total"] == 2
    assert [v["config"] for v in versions["data"]] == [
        '{"virtual_key": "c", "retry": {"attempts": 2}}',
        '{"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b"}]}',
    ]

    listed = raw(portico_local, "GET", "/configs", portico_local.admin_key).json()["data"]
    assert slug in [c["slug"] for c in listed]
    assert raw(portico_local, "DELETE", f"/configs/{slug}", portico_local.admin_key).status_code == 200
    assert raw(portico_local, "GET", f"/configs/{slug}", portico_local.admin_key).status_code == 404


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"strategy": {"mode": "roundrobin"}, "targets": [{"virtual_key": "a"}]}, "config.strategy.mode"),
        ({"strategy": {"mode": "fallback"}, "targets": []}, "config"),
        (
            {"targets": [{"virtual_key": "a", "weight": -1}], "strategy": {"mode": "loadbalance"}},
            "config.targets.0.weight",
        ),
        ({"retry": {"attempts": 99}, "virtual_key": "a"}, "config.retry.attempts"),
        ({"strategy": {"mode": "single"}, "targets": [{"note": "no destination"}]}, "config.targets.0.note"),
    ],
)
def test_malformed_configs_are_refused(portico_local: RunningPortico, config: dict[str, Any], param: str) -> None:
    response = raw(portico_local, "POST", "/configs", portico_local.admin_key, json={"name": "bad", "config": config})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
