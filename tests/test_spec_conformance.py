"""REST responses checked against the spec's own schemas, and the registry checked against the spec's operations.

`tests/spec/portkey-openapi.yaml` is a copy of the project's spec (shared/spec). Each implemented operation is
called once for real and its 200 body validated with an OpenAPI 3.0 schema validator.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from portico.catalogue import load_registry
from portico.coverage import spec_operations, unknown_operations
from tests.support.server import RunningPortico

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


def assert_conforms(method: str, path: str, body: Any) -> None:
    schema = response_schema(method, path)
    assert schema is not None, f"the spec has no JSON schema for {method} {path}"
    errors = sorted(OAS30Validator(schema).iter_errors(body), key=str)
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


def test_every_implemented_operation_answers_per_its_schema(portico_local: RunningPortico) -> None:
    admin = {"x-portkey-api-key": portico_local.admin_key}
    checked: set[tuple[str, str]] = set()

    def call(method: str, spec_path: str, url: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{portico_local.api}{url}", headers=admin, timeout=30, **kwargs)
        assert response.status_code == 200, f"{method} {url}: {response.status_code} {response.text}"
        # The spec gives no body schema for a few operations (DELETE /admin/workspaces/{workspaceId}).
        if response.headers["content-type"].startswith("application/json") and response_schema(method, spec_path):
            assert_conforms(method, spec_path, response.json())
        checked.add((method, spec_path))
        return response.json() if response.headers["content-type"].startswith("application/json") else None

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

    implemented = {op.spec_key for op in load_registry().rest_operations()}
    assert checked == implemented, f"operations not exercised here: {implemented - checked}"


@pytest.mark.parametrize("body", [{"id": 1, "object": "file"}, {"object": "list"}])
def test_the_validator_does_reject_wrong_shapes(body: dict[str, Any]) -> None:
    """Guards the test above against a validator that accepts anything."""
    with pytest.raises(AssertionError):
        assert_conforms("GET", "/files/{file_id}", body)
        assert_conforms("GET", "/files", body)
