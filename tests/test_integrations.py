"""Integrations, their models and workspace grants, and providers, through the `portkey-ai` SDK (raw httpx where a
status code or error body is the point): secrets sealed and never echoed, validation naming the field, workspace
isolation, and the `@slug` lookup the gateway routes with."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from portkey_ai import Portkey

from control_plane.provider_access import ProviderAccess, find_provider, provider_slug, split_model
from portico.auth import authenticate
from portico.dispatch import build_context
from portico.errors import PermissionDenied
from portico.services import close_services, open_services
from tests.support.keys import WorkspaceKey, create_workspace_key
from tests.support.server import RunningPortico

SECRET = "sk-integration-secret-that-must-never-be-echoed"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WORKSPACE_SCOPES = (
    "completions.write",
    "integrations.read",
    "integrations.list",
    "providers.create",
    "providers.read",
    "providers.list",
    "providers.update",
    "providers.delete",
)


def as_dict(response: Any) -> dict[str, Any]:
    return response.model_dump() if hasattr(response, "model_dump") else dict(response)


def raw(portico: RunningPortico, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"x-portkey-api-key": key or portico.admin_key}
    return httpx.request(method, f"{portico.api}{path}", headers=headers, timeout=30, **kwargs)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error_param(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["param"])


def stored_row(portico: RunningPortico, table: str, slug: str) -> dict[str, Any]:
    database = portico.settings.resolved_database_url().split("///", 1)[1]
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute(f"SELECT * FROM {table} WHERE slug = ?", (slug,)).fetchone()
    return dict(row)


@pytest.fixture(scope="module")
def admin(portico_local: RunningPortico) -> Portkey:
    return Portkey(api_key=portico_local.admin_key, base_url=portico_local.api)


def openai_integration(portico: RunningPortico, **extra: Any) -> str:
    body = {"name": f"OpenAI {uuid.uuid4().hex[:6]}", "ai_provider_id": "openai", "key": SECRET, **extra}
    return str(ok(raw(portico, "POST", "/integrations", json=body))["slug"])


def grant(portico: RunningPortico, slug: str, *workspaces: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"workspaces": list(workspaces), **extra}
    return dict(ok(raw(portico, "PUT", f"/integrations/{slug}/workspaces", json=body)))


def slugs(listing: dict[str, Any]) -> list[str]:
    return [item["slug"] for item in listing["data"]]


def test_integration_secrets_are_sealed_masked_and_never_returned(
    portico_local: RunningPortico, admin: Portkey
) -> None:
    created = as_dict(admin.integrations.create(name="OpenAI prod", ai_provider_id="openai", key=SECRET))
    slug = created["slug"]
    assert slug.startswith("openai-prod-") and created["id"]

    fetched = as_dict(admin.integrations.retrieve(slug=slug))
    assert (fetched["ai_provider_id"], fetched["object"], fetched["type"]) == ("openai", "integration", "organisation")
    assert fetched["masked_key"] == SECRET[:4] + "*******" + SECRET[-2:]
    assert slug in [i.slug for i in admin.integrations.list().data or []]
    for path in (f"/integrations/{slug}", "/integrations"):
        assert SECRET not in ok_text(raw(portico_local, "GET", path))

    row = stored_row(portico_local, "integrations", slug)
    assert row["sealed_secrets"].startswith("gAAAA"), "sealed with Fernet"
    assert SECRET not in json.dumps(row)

    admin.integrations.update(slug=slug, name="OpenAI renamed", note="hello", key="sk-rotated-0123456789abcdef")
    updated = ok(raw(portico_local, "GET", f"/integrations/{slug}"))
    assert (updated["name"], updated["description"], updated["masked_key"]) == (
        "OpenAI renamed",
        "hello",
        "sk-r*******ef",
    )
    assert "sk-rotated" not in json.dumps(stored_row(portico_local, "integrations", slug))

    admin.integrations.delete(slug=slug)
    assert error_param(raw(portico_local, "GET", f"/integrations/{slug}"), 404) == "slug"


def ok_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.text


def test_configurations_split_into_settings_and_masked_secrets(portico_local: RunningPortico) -> None:
    body = {
        "name": "Bedrock",
        "ai_provider_id": "bedrock",
        "configurations": {
            "aws_auth_type": "accessKey",
            "aws_region": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": AWS_SECRET,
            "aws_role_arn": "arn:aws:iam::123456789012:role/batch",
        },
    }
    slug = ok(raw(portico_local, "POST", "/integrations", json=body))["slug"]
    fetched = raw(portico_local, "GET", f"/integrations/{slug}")
    assert AWS_SECRET not in fetched.text and "AKIDEXAMPLE" not in fetched.text
    assert fetched.json()["configurations"] == {
        "aws_auth_type": "accessKey",
        "aws_region": "us-east-1",
        "aws_role_arn": "arn:aws:iam::123456789012:role/batch",
        "masked_aws_access_key_id": "********",
        "masked_aws_secret_access_key": "wJal*******EY",
    }
    assert "masked_key" not in fetched.json()

    change = {"configurations": {"aws_region": "eu-west-1", "aws_role_arn": None}}
    updated = ok(raw(portico_local, "PUT", f"/integrations/{slug}", json=change))["configurations"]
    assert updated["aws_region"] == "eu-west-1" and "aws_role_arn" not in updated
    assert updated["masked_aws_secret_access_key"] == "wJal*******EY", "untouched secrets stay"

    # Removing a field the provider needs is refused, and leaves the integration as it was.
    removal = raw(portico_local, "PUT", f"/integrations/{slug}", json={"configurations": {"aws_region": None}})
    assert error_param(removal) == "configurations.aws_region"
    assert ok(raw(portico_local, "GET", f"/integrations/{slug}"))["configurations"]["aws_region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "ai_provider_id": "nonsense", "key": "k"}, "ai_provider_id"),
        ({"name": "x", "ai_provider_id": "openai"}, "key"),
        (
            {
                "name": "x",
                "ai_provider_id": "bedrock",
                "configurations": {"aws_access_key_id": "A", "aws_secret_access_key": "S"},
            },
            "configurations.aws_region",
        ),
        (
            {"name": "x", "ai_provider_id": "vertex-ai", "configurations": {"vertex_region": "r"}},
            "configurations.vertex_project_id",
        ),
        (
            {"name": "x", "ai_provider_id": "openai", "key": "k", "configurations": {"aws_regoin": "typo"}},
            "configurations.aws_regoin",
        ),
        ({"name": "x", "ai_provider_id": "bedrock", "configurations": {"aws_region": 5}}, "configurations.aws_region"),
        ({"name": "x", "ai_provider_id": "openai", "key": "k", "confgurations": {}}, "confgurations"),
        ({"name": "x", "ai_provider_id": "openai", "key": "k", "slug": "has space"}, "slug"),
        ({"name": "x", "ai_provider_id": "openai", "secret_mappings": [{"target_field": "key"}]}, "secret_mappings"),
        ({"name": "x", "ai_provider_id": "openai", "key": "k", "default_provider_slug": "d"}, "default_provider_slug"),
        ({"ai_provider_id": "openai", "key": "k"}, "name"),
    ],
)
def test_integration_validation_names_the_field(
    portico_local: RunningPortico, body: dict[str, Any], param: str
) -> None:
    assert error_param(raw(portico_local, "POST", "/integrations", json=body)) == param
    assert "x" not in [i["name"] for i in ok(raw(portico_local, "GET", "/integrations"))["data"]], "nothing stored"


def test_models_allow_list(portico_local: RunningPortico, admin: Portkey) -> None:
    slug = openai_integration(portico_local)
    listed = as_dict(admin.integrations.models.list(slug=slug))
    assert (listed["total"], listed["models"], listed["allow_all_models"]) == (0, [], True)

    pricing = {"type": "static", "pay_as_you_go": {"request_token": {"price": 0.5}, "response_token": {"price": 1.5}}}
    admin.integrations.models.update(
        slug=slug,
        allow_all_models=False,
        models=[
            {"slug": "gpt-4o", "enabled": True},
            {
                "slug": "my-ft",
                "enabled": True,
                "is_custom": True,
                "is_finetune": True,
                "base_model_slug": "gpt-4o-mini",
                "pricing_config": pricing,
            },
            {"slug": "gpt-3.5-turbo", "enabled": False},
        ],
    )
    models = ok(raw(portico_local, "GET", f"/integrations/{slug}/models"))
    assert models["allow_all_models"] is False and models["total"] == 3
    by_slug = {m["slug"]: m for m in models["models"]}
    assert by_slug["my-ft"]["pricing_config"] == pricing and by_slug["my-ft"]["base_model_slug"] == "gpt-4o-mini"
    assert (by_slug["gpt-4o"]["enabled"], by_slug["gpt-3.5-turbo"]["enabled"]) == (True, False)

    twice = {"models": [{"slug": "a", "enabled": True}, {"slug": "a", "enabled": False}]}
    assert error_param(raw(portico_local, "PUT", f"/integrations/{slug}/models", json=twice)) == "models.1.slug"
    no_flag = {"models": [{"slug": "a"}]}
    assert error_param(raw(portico_local, "PUT", f"/integrations/{slug}/models", json=no_flag)) == "models.0.enabled"

    # A wrong slug deletes nothing; a right list deletes exactly those.
    missing = raw(portico_local, "DELETE", f"/integrations/{slug}/models", params={"slugs": "my-ft,nope"})
    assert error_param(missing, 404) == "slugs"
    assert ok(raw(portico_local, "GET", f"/integrations/{slug}/models"))["total"] == 3
    admin.integrations.models.delete(slug=slug, slugs="my-ft,gpt-3.5-turbo")
    assert [m["slug"] for m in ok(raw(portico_local, "GET", f"/integrations/{slug}/models"))["models"]] == ["gpt-4o"]


def test_workspace_access_grants_default_providers_and_isolates(portico_local: RunningPortico, admin: Portkey) -> None:
    a, b = (create_workspace_key(portico_local, WORKSPACE_SCOPES) for _ in range(2))
    slug = openai_integration(portico_local)
    assert slug not in slugs(ok(raw(portico_local, "GET", "/integrations", a.key)))
    assert error_param(raw(portico_local, "GET", f"/integrations/{slug}", a.key), 404) == "slug"
    unavailable = raw(portico_local, "POST", "/providers", a.key, json={"name": "p", "integration_id": slug})
    assert error_param(unavailable, 404) == "integration_id"

    limits = {"usage_limits": [{"credit_limit": 10, "periodic_reset": "monthly"}]}
    rate = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 60}]}
    admin.integrations.workspaces.update(
        slug=slug, workspaces=[{"id": a.workspace_id, "enabled": True, **limits, **rate}]
    )
    access = ok(raw(portico_local, "GET", f"/integrations/{slug}/workspaces"))
    assert access["total"] == 1 and access["global_workspace_access"]["enabled"] is False
    assert access["workspaces"][0] | {"created_at": 0, "last_updated_at": 0} == {
        "id": a.workspace_id,
        "enabled": True,
        "created_at": 0,
        "last_updated_at": 0,
        **limits,
        **rate,
    }
    # Access came with a default provider named after the integration, so '@<slug>' works there at once.
    providers = ok(raw(portico_local, "GET", "/providers", a.key))["data"]
    assert [(p["slug"], p["integration_id"]) for p in providers] == [(slug, slug)]
    assert slug in slugs(ok(raw(portico_local, "GET", "/integrations", a.key)))
    assert slug not in slugs(ok(raw(portico_local, "GET", "/integrations", b.key)))
    assert ok(raw(portico_local, "GET", f"/integrations/{slug}"))["workspace_count"] == 1

    # Workspace keys read what their workspace may use, but never change an integration or see its grants.
    assert raw(portico_local, "GET", f"/integrations/{slug}/models", a.key).status_code == 200
    for method, path in (("PUT", f"/integrations/{slug}"), ("GET", f"/integrations/{slug}/workspaces")):
        assert raw(portico_local, method, path, a.key, json={"name": "n"}).status_code == 403

    # Global access opens it to b too; b adds its own provider.
    grant(portico_local, slug, global_workspace_access={"enabled": True})
    assert slug in slugs(ok(raw(portico_local, "GET", "/integrations", b.key)))
    ok(raw(portico_local, "POST", "/providers", b.key, json={"name": "Mine", "integration_id": slug, "slug": "mine"}))

    # Replacing the grants: a is refused explicitly, every other grant is dropped.
    admin.integrations.workspaces.update(
        slug=slug,
        workspaces=[{"id": a.workspace_id, "enabled": False}],
        override_existing_workspaces_access=True,
    )
    assert slug not in slugs(ok(raw(portico_local, "GET", "/integrations", a.key)))
    assert slug in slugs(ok(raw(portico_local, "GET", "/integrations", b.key)))
    assert [p["slug"] for p in ok(raw(portico_local, "GET", "/providers", a.key))["data"]] == [slug], "kept, unusable"

    unknown = grant_response(portico_local, slug, {"id": "ws-nope", "enabled": True})
    assert error_param(unknown, 404) == "workspaces.0.id"
    bad_limit = grant_response(
        portico_local, slug, {"id": b.workspace_id, "enabled": True, "rate_limits": [{"unit": "rpx", "value": 1}]}
    )
    assert error_param(bad_limit) == "workspaces.0.rate_limits.0.unit"


def grant_response(portico: RunningPortico, slug: str, *workspaces: dict[str, Any]) -> httpx.Response:
    return raw(portico, "PUT", f"/integrations/{slug}/workspaces", json={"workspaces": list(workspaces)})


def test_workspace_keys_cannot_hold_integration_write_scopes(portico_local: RunningPortico) -> None:
    workspace = ok(raw(portico_local, "POST", "/admin/workspaces", json={"name": "scopes"}))["id"]
    body = {"name": "k", "workspace_id": workspace, "scopes": ["integrations.read", "integrations.create"]}
    response = raw(portico_local, "POST", "/api-keys/workspace/service", json=body)
    assert error_param(response) == "scopes" and "integrations.create" in response.text


def test_workspace_scoped_integration(portico_local: RunningPortico) -> None:
    a, b = (create_workspace_key(portico_local, WORKSPACE_SCOPES) for _ in range(2))
    scoped = {"workspace_id": a.workspace_id, "default_provider_slug": "scoped-default"}
    slug = openai_integration(portico_local, **scoped)
    assert [p["slug"] for p in ok(raw(portico_local, "GET", "/providers", a.key))["data"]] == ["scoped-default"]
    assert slug in slugs(ok(raw(portico_local, "GET", "/integrations", params={"type": "workspace"})))
    assert slug not in slugs(ok(raw(portico_local, "GET", "/integrations", params={"type": "organisation"})))
    assert slug in slugs(ok(raw(portico_local, "GET", "/integrations", params={"workspace_id": a.workspace_id})))
    assert slug not in slugs(ok(raw(portico_local, "GET", "/integrations", b.key)))
    assert error_param(grant_response(portico_local, slug, {"id": b.workspace_id, "enabled": True})) == "workspaces"

    # A default provider slug already taken fails the whole create: no integration is left behind.
    before = ok(raw(portico_local, "GET", "/integrations"))["total"]
    taken = {"name": "Again", "ai_provider_id": "openai", "key": "k", **scoped}
    assert error_param(raw(portico_local, "POST", "/integrations", json=taken)) == "default_provider_slug"
    assert ok(raw(portico_local, "GET", "/integrations"))["total"] == before


def test_providers_crud_and_isolation(portico_local: RunningPortico) -> None:
    a, b = (create_workspace_key(portico_local, WORKSPACE_SCOPES) for _ in range(2))
    slug = openai_integration(portico_local)
    grant(portico_local, slug, {"id": a.workspace_id, "enabled": True, "create_default_provider": False})
    client = Portkey(api_key=a.key, base_url=portico_local.api)

    created = as_dict(
        client.providers.create(
            name="Team OpenAI",
            integration_id=slug,
            slug="team-openai",
            note="for the team",
            usage_limits={"credit_limit": 100, "type": "cost", "periodic_reset": "weekly"},
            rate_limits={"type": "requests", "unit": "rph", "value": 500},
            expires_at="2099-01-01T00:00:00Z",
        )
    )
    assert created["slug"] == "team-openai" and created["id"]
    fetched = as_dict(client.providers.retrieve(slug="team-openai"))
    assert (fetched["integration_id"], fetched["status"], fetched["note"]) == (slug, "active", "for the team")
    assert fetched["rate_limits"] == [{"type": "requests", "unit": "rph", "value": 500}]
    assert fetched["expires_at"].startswith("2099-01-01")
    assert SECRET not in ok_text(raw(portico_local, "GET", "/providers/team-openai", a.key))
    # Raw: the SDK types a listed provider's rate_limits as one object, where the spec (and its own
    # ProviderDetailResponse) has a list, so providers.list() cannot parse a provider that has rate limits.
    assert slugs(ok(raw(portico_local, "GET", "/providers", a.key))) == ["team-openai"]

    updated = as_dict(client.providers.update(slug="team-openai", name="Renamed", note="n2", expires_at=None))
    assert (updated["name"], updated["note"], updated.get("expires_at")) == ("Renamed", "n2", None)

    # Another workspace neither sees it nor can reach it by slug; the organisation key reaches it by workspace.
    assert raw(portico_local, "GET", "/providers/team-openai", b.key).status_code == 404
    assert ok(raw(portico_local, "GET", "/providers", b.key))["data"] == []
    in_a = {"workspace_id": a.workspace_id}
    assert ok(raw(portico_local, "GET", "/providers/team-openai", params=in_a))["name"] == "Renamed"

    again = raw(
        portico_local, "POST", "/providers", a.key, json={"name": "x", "integration_id": slug, "slug": "team-openai"}
    )
    assert error_param(again, 409) == "slug"
    daily = {"name": "x", "integration_id": slug, "usage_limits": {"periodic_reset": "daily"}}
    assert error_param(raw(portico_local, "POST", "/providers", a.key, json=daily)) == "usage_limits.periodic_reset"
    assert error_param(raw(portico_local, "POST", "/providers", a.key, json={"name": "x"})) == "integration_id"

    client.providers.delete(slug="team-openai")
    assert raw(portico_local, "GET", "/providers/team-openai", a.key).status_code == 404


def lookup(portico: RunningPortico, key: WorkspaceKey, slug: str) -> ProviderAccess | None:
    """The gateway's `@slug` lookup, run against the server's database with fresh services (so no stale cache)."""

    async def run() -> ProviderAccess | None:
        services = await open_services(portico.settings, migrate=False)
        try:
            principal = await authenticate(services, {"x-portkey-api-key": key.key})
            return await find_provider(await build_context(services, principal), slug)
        finally:
            await close_services(services)

    return asyncio.run(run())


def test_provider_slug_resolves_to_the_integrations_credentials(portico_local: RunningPortico) -> None:
    a, b = (create_workspace_key(portico_local, WORKSPACE_SCOPES) for _ in range(2))
    body = {
        "name": "Bedrock routing",
        "ai_provider_id": "bedrock",
        "configurations": {
            "aws_region": "us-west-2",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": AWS_SECRET,
        },
    }
    slug = ok(raw(portico_local, "POST", "/integrations", json=body))["slug"]
    grant(portico_local, slug, {"id": a.workspace_id, "enabled": True})
    models = {"allow_all_models": False, "models": [{"slug": "claude-3-haiku", "enabled": True}]}
    ok(raw(portico_local, "PUT", f"/integrations/{slug}/models", json=models))

    access = lookup(portico_local, a, slug)
    assert access is not None and access.provider == "bedrock"
    assert dict(access.secrets) == {"awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": AWS_SECRET}
    assert dict(access.settings) == {"awsRegion": "us-west-2"}, "named as a virtual key's, so adapters read both"
    assert access.allows("claude-3-haiku") and not access.allows("claude-3-opus")
    with pytest.raises(PermissionDenied) as refused:
        access.check_model("claude-3-opus")
    assert refused.value.param == "model"
    assert lookup(portico_local, a, "no-such-provider") is None
    assert lookup(portico_local, b, slug) is None, "another workspace's provider does not exist for b"

    ok(raw(portico_local, "PUT", f"/providers/{slug}", a.key, json={"expires_at": "2001-01-01T00:00:00Z"}))
    with pytest.raises(PermissionDenied) as expired:
        lookup(portico_local, a, slug)
    assert expired.value.code == "provider_expired"
    ok(raw(portico_local, "PUT", f"/providers/{slug}", a.key, json={"expires_at": None}))

    grant(portico_local, slug, {"id": a.workspace_id, "enabled": False})
    with pytest.raises(PermissionDenied) as revoked:
        lookup(portico_local, a, slug)
    assert revoked.value.code == "integration_access_revoked"


def test_provider_references() -> None:
    assert provider_slug("@openai-prod") == "openai-prod"
    assert provider_slug("openai") is None and provider_slug("@") is None
    assert split_model("@openai-prod/gpt-4o") == ("openai-prod", "gpt-4o")
    assert split_model("gpt-4o") is None and split_model("@openai-prod") is None


async def test_mcp_tools_create_and_read_integrations_without_secrets(portico_local: RunningPortico) -> None:
    from tests.test_mcp import MODES, connect

    for protocol in MODES:
        async with connect(portico_local, portico_local.admin_key, protocol) as client:
            arguments = {
                "name": f"mcp {protocol}",
                "ai_provider_id": "vertex-ai",
                "configurations": {
                    "vertex_region": "us-central1",
                    "vertex_project_id": "proj",
                    "vertex_service_account_json": {"type": "service_account", "private_key": SECRET},
                },
            }
            created = await client.call_tool("operations_call", {"name": "integrations_create", "arguments": arguments})
            assert not created.is_error, created.content
            slug = created.structured_content["slug"]  # type: ignore[index]
            read = await client.call_tool(
                "operations_call", {"name": "integrations_retrieve", "arguments": {"slug": slug}}
            )
            assert not read.is_error, read.content
            assert read.structured_content["configurations"] == {  # type: ignore[index]
                "vertex_region": "us-central1",
                "vertex_project_id": "proj",
                "masked_vertex_service_account_json": "********",
            }
            for result in (created, read):
                assert SECRET not in json.dumps(result.model_dump(mode="json"))
