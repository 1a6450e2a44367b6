"""Workspaces and API keys through the official `portkey-ai` SDK: CRUD, hashing, scopes, who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from portkey_ai import Portkey

from tests.support.inspect import count_rows
from tests.support.server import RunningPortico


def as_dict(response: Any) -> dict[str, Any]:
    return response.model_dump() if hasattr(response, "model_dump") else dict(response)


@pytest.fixture(scope="module")
def admin(portico_local: RunningPortico) -> Portkey:
    return Portkey(api_key=portico_local.admin_key, base_url=portico_local.api)


def test_workspace_lifecycle(admin: Portkey) -> None:
    created = as_dict(
        admin.admin.workspaces.create(name="Research", description="R&D", defaults={"metadata": {"team": "r"}})
    )
    workspace_id = created["id"]
    assert created["name"] == "Research" and created["defaults"]["metadata"] == {"team": "r"}

    fetched = as_dict(admin.admin.workspaces.retrieve(workspace_id=workspace_id))
    assert fetched["id"] == workspace_id and fetched["slug"] == created["slug"]

    admin.admin.workspaces.update(workspace_id=workspace_id, name="Research 2")
    assert as_dict(admin.admin.workspaces.retrieve(workspace_id=workspace_id))["name"] == "Research 2"

    listed = as_dict(admin.admin.workspaces.list(name="Research"))
    assert workspace_id in [w["id"] for w in listed["data"]] and listed["total"] >= 1

    admin.admin.workspaces.delete(workspace_id=workspace_id)
    with pytest.raises(Exception, match=r"404|not found|No workspace"):
        admin.admin.workspaces.retrieve(workspace_id=workspace_id)


def test_default_workspace_cannot_be_deleted(portico_local: RunningPortico) -> None:
    response = httpx.delete(
        f"{portico_local.api}/admin/workspaces/ws-default", headers={"x-portkey-api-key": portico_local.admin_key}
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "default_workspace"


def test_workspace_pages(portico_local: RunningPortico, admin: Portkey) -> None:
    for i in range(3):
        admin.admin.workspaces.create(name=f"paged-{i}")
    page0 = as_dict(admin.admin.workspaces.list(page_size=2, current_page=0, name="paged-"))
    page1 = as_dict(admin.admin.workspaces.list(page_size=2, current_page=1, name="paged-"))
    assert page0["total"] == page1["total"] == 3
    assert len(page0["data"]) == 2 and len(page1["data"]) == 1
    assert not {w["id"] for w in page0["data"]} & {w["id"] for w in page1["data"]}


def test_api_key_lifecycle_and_hashing(portico_local: RunningPortico, admin: Portkey) -> None:
    workspace_id = as_dict(admin.admin.workspaces.create(name="Keys"))["id"]
    created = as_dict(
        admin.api_keys.create(
            type="workspace", sub_type="service", name="svc", workspace_id=workspace_id, scopes=["completions.write"]
        )
    )
    secret = created["key"]
    assert secret.startswith("pk-") and created["object"] == "api-key"

    fetched = as_dict(admin.api_keys.retrieve(id=created["id"]))
    assert fetched["key"] != secret and "*" in fetched["key"], "the secret is never shown again"
    assert fetched["type"] == "workspace-service" and fetched["workspace_id"] == workspace_id
    assert fetched["scopes"] == ["completions.write"]

    listed = as_dict(admin.api_keys.list(workspace_id=workspace_id))
    assert [k["id"] for k in listed["data"]] == [created["id"]]

    admin.api_keys.update(id=created["id"], name="renamed", scopes=["completions.write", "logs.view"])
    assert as_dict(admin.api_keys.retrieve(id=created["id"]))["name"] == "renamed"

    # The new key works for the data plane, then stops working once deleted.
    files = httpx.get(f"{portico_local.api}/files", headers={"authorization": f"Bearer {secret}"})
    assert files.status_code == 200
    admin.api_keys.delete(id=created["id"])
    files = httpx.get(f"{portico_local.api}/files", headers={"authorization": f"Bearer {secret}"})
    assert files.status_code == 401


def test_keys_are_stored_hashed(portico_local: RunningPortico) -> None:
    import sqlite3

    database = portico_local.settings.resolved_database_url().split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        stored = [row[0] for row in connection.execute("SELECT key_hash FROM api_keys")]
    assert portico_local.admin_key not in stored
    assert all(len(value) == 64 for value in stored)
    assert count_rows(portico_local.settings, "api_keys") == len(stored)


def post(portico: RunningPortico, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{portico.api}{path}", json=body, headers={"x-portkey-api-key": key})


def test_scope_rules(portico_local: RunningPortico, admin: Portkey) -> None:
    workspace_id = as_dict(admin.admin.workspaces.create(name="Scopes"))["id"]
    limited = as_dict(
        admin.api_keys.create(
            type="workspace",
            sub_type="service",
            name="limited",
            workspace_id=workspace_id,
            scopes=["completions.write", "workspace_service_api_keys.create"],
        )
    )["key"]

    # A workspace key cannot manage workspaces.
    refused = post(portico_local, "/admin/workspaces", limited, {"name": "nope"})
    assert refused.status_code == 403 and "workspaces.create" in refused.json()["error"]["message"]

    # It may create keys in its own workspace, but never grant scopes it lacks.
    escalation = post(
        portico_local, "/api-keys/workspace/service", limited, {"name": "x", "scopes": ["virtual_keys.create"]}
    )
    assert escalation.status_code == 403 and escalation.json()["error"]["code"] == "scope_escalation"
    ok = post(portico_local, "/api-keys/workspace/service", limited, {"name": "x", "scopes": ["completions.write"]})
    assert ok.status_code == 200, ok.text

    # Nor may it reach another workspace.
    other = post(
        portico_local,
        "/api-keys/workspace/service",
        limited,
        {"name": "x", "workspace_id": "ws-default", "scopes": ["completions.write"]},
    )
    assert other.status_code == 404

    unknown = post(
        portico_local, "/api-keys/organisation/service", portico_local.admin_key, {"name": "x", "scopes": ["nope.x"]}
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "scopes"
    bad_type = post(portico_local, "/api-keys/team/service", portico_local.admin_key, {"name": "x", "scopes": []})
    assert bad_type.status_code == 400 and bad_type.json()["error"]["param"] == "type"
    user_without_id = post(
        portico_local,
        "/api-keys/workspace/user",
        portico_local.admin_key,
        {"name": "x", "workspace_id": workspace_id, "scopes": []},
    )
    assert user_without_id.status_code == 400 and user_without_id.json()["error"]["param"] == "user_id"


def test_validation_errors_name_the_field(portico_local: RunningPortico) -> None:
    missing_name = post(portico_local, "/admin/workspaces", portico_local.admin_key, {"description": "x"})
    assert missing_name.status_code == 400 and missing_name.json()["error"]["param"] == "name"
    not_json = httpx.post(
        f"{portico_local.api}/admin/workspaces",
        content=b"{nope",
        headers={"x-portkey-api-key": portico_local.admin_key, "content-type": "application/json"},
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    unknown_route = httpx.get(f"{portico_local.api}/nothing-here", headers={"x-portkey-api-key": "x"})
    assert unknown_route.status_code == 404 and unknown_route.json()["error"]["type"] == "not_found_error"


def test_oversized_json_bodies_answer_413(portico_local: RunningPortico) -> None:
    headers = {"x-portkey-api-key": portico_local.admin_key, "content-type": "application/json"}
    huge = b'{"name": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    declared = httpx.post(f"{portico_local.api}/admin/workspaces", content=huge, headers=headers, timeout=60)
    assert declared.status_code == 413 and declared.json()["error"]["param"] == "body"

    def chunked() -> Iterator[bytes]:
        yield huge[:1024]
        for start in range(1024, len(huge), 1024 * 1024):
            yield huge[start : start + 1024 * 1024]

    streamed = httpx.post(f"{portico_local.api}/admin/workspaces", content=chunked(), headers=headers, timeout=60)
    assert streamed.status_code == 413
