"""API-key scopes, named as the spec names them.

`completions.write` opens the data plane (inference, files, batches, fine-tunes) to a workspace key. The other
scopes guard the control plane; an organisation admin key holds them all. A key never grants a scope it lacks.
"""

from __future__ import annotations

DATA_PLANE = "completions.write"

_ACTIONS = ("create", "read", "update", "delete", "list")
_RESOURCES = (
    "workspaces",
    "organisation_service_api_keys",
    "workspace_service_api_keys",
    "workspace_user_api_keys",
    "organisation_users",
    "workspace_users",
    "configs",
    "virtual_keys",
    "providers",
    "integrations",
    "prompts",
    "guardrails",
)
_EXTRA = (
    DATA_PLANE,
    "logs.export",
    "logs.list",
    "logs.view",
    "analytics.view",
    "virtual_keys.copy",
    "virtual_keys.duplicate",
)

ALL_SCOPES: frozenset[str] = frozenset({f"{r}.{a}" for r in _RESOURCES for a in _ACTIONS} | set(_EXTRA))

# Scopes a workspace-level key may hold: nothing that reaches across workspaces. Integrations are shared by the
# organisation's workspaces, so a workspace key may read the ones its workspace can use but never change one.
_ORGANISATION_ONLY_PREFIXES = ("workspaces.", "organisation_service_api_keys.", "organisation_users.")
_ORGANISATION_ONLY = frozenset({"integrations.create", "integrations.update", "integrations.delete"})
WORKSPACE_SCOPES: frozenset[str] = frozenset(
    s
    for s in ALL_SCOPES
    if (not s.startswith(_ORGANISATION_ONLY_PREFIXES) or s == "workspaces.read") and s not in _ORGANISATION_ONLY
)

# The scope family that manages each key type.
KEY_ADMIN_FAMILY = {
    "organisation-service": "organisation_service_api_keys",
    "workspace-service": "workspace_service_api_keys",
    "workspace-user": "workspace_user_api_keys",
}
