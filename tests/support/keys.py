"""Workspaces and keys for tests, created through the REST API like any user would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from tests.support.server import RunningPortico


@dataclass(frozen=True)
class WorkspaceKey:
    workspace_id: str
    key: str


def create_workspace_key(portico: RunningPortico, scopes: tuple[str, ...] = ("completions.write",)) -> WorkspaceKey:
    headers = {"x-portkey-api-key": portico.admin_key}
    with httpx.Client(base_url=portico.api, headers=headers, timeout=30) as client:
        workspace = client.post("/admin/workspaces", json={"name": f"ws {uuid.uuid4().hex[:6]}"})
        workspace.raise_for_status()
        workspace_id = workspace.json()["id"]
        created = client.post(
            "/api-keys/workspace/service",
            json={"name": "test service key", "workspace_id": workspace_id, "scopes": list(scopes)},
        )
        created.raise_for_status()
    return WorkspaceKey(workspace_id=workspace_id, key=created.json()["key"])
