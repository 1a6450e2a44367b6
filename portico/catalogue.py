"""Every operation module, imported once so its declarations land in `REGISTRY`. Add new domains here."""

from __future__ import annotations

import importlib

from portico.registry import REGISTRY, Registry

# Order matters a little: REST routes are matched in this order, so the hot data-plane paths come first
# (chat was the 45th of 62 routes, 44 regex matches per request, before this order).
OPERATION_MODULES = (
    "gateway.inference",
    "gateway.tools",
    "gateway.completions",
    "gateway.responses",
    "gateway.realtime",
    "gateway.moderations",
    "gateway.media",
    "gateway.models",
    "files.operations",
    "files.upload_grants",
    "batch.operations",
    "finetune.operations",
    "control_plane.workspaces",
    "control_plane.api_keys",
    "control_plane.virtual_keys",
    "control_plane.configs",
    "control_plane.integrations",
    "control_plane.integration_models",
    "control_plane.integration_workspaces",
    "control_plane.providers",
    "portico.diagnostics",
)


def load_registry() -> Registry:
    for module in OPERATION_MODULES:
        importlib.import_module(module)
    return REGISTRY
