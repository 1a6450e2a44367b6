"""Workspaces never see each other's objects: B's key against A's ids answers 404 for every file operation."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico


@pytest.fixture(scope="module")
def tenants(portico: RunningPortico) -> tuple[WorkspaceKey, WorkspaceKey]:
    return create_workspace_key(portico), create_workspace_key(portico)


def test_every_file_operation_is_confined_to_its_workspace(
    portico: RunningPortico, tenants: tuple[WorkspaceKey, WorkspaceKey]
) -> None:
    a, b = tenants
    with (
        openai.OpenAI(base_url=portico.api, api_key=a.key, max_retries=0) as client_a,
        openai.OpenAI(base_url=portico.api, api_key=b.key, max_retries=0) as client_b,
    ):
        mine = client_a.files.create(file=("a.txt", b"workspace A only"), purpose="assistants")
        theirs = client_b.files.create(file=("b.txt", b"workspace B only"), purpose="assistants")

        for attempt in (
            lambda: client_b.files.retrieve(mine.id),
            lambda: client_b.files.content(mine.id),
            lambda: client_b.files.delete(mine.id),
        ):
            with pytest.raises(openai.NotFoundError):
                attempt()

        assert [f.id for f in client_a.files.list()] == [mine.id]
        assert [f.id for f in client_b.files.list()] == [theirs.id]
        # A cursor naming another workspace's file reveals nothing either.
        assert [f.id for f in client_b.files.list(after=mine.id)] == [theirs.id]

        # A's file survived B's delete attempt, bytes intact.
        assert client_a.files.content(mine.id).content == b"workspace A only"


def test_an_organisation_key_chooses_its_workspace(
    portico: RunningPortico, tenants: tuple[WorkspaceKey, WorkspaceKey]
) -> None:
    a, _ = tenants
    headers = {"authorization": f"Bearer {portico.admin_key}"}
    in_a = httpx.get(f"{portico.api}/files", headers={**headers, "x-portico-workspace": a.workspace_id})
    in_default = httpx.get(f"{portico.api}/files", headers=headers)
    assert in_a.status_code == in_default.status_code == 200
    a_ids = {f["id"] for f in in_a.json()["data"]}
    assert a_ids and not a_ids & {f["id"] for f in in_default.json()["data"]}
    unknown = httpx.get(f"{portico.api}/files", headers={**headers, "x-portico-workspace": "ws-nope"})
    assert unknown.status_code == 404
