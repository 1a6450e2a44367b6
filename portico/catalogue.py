"""Every operation module, imported once so its declarations land in `REGISTRY`. Add new domains here."""

from __future__ import annotations

import importlib

from portico.registry import REGISTRY, Registry

OPERATION_MODULES = (
    "files.operations",
    "files.upload_grants",
    "control_plane.workspaces",
    "control_plane.api_keys",
    "control_plane.virtual_keys",
    "control_plane.configs",
    "control_plane.integrations",
    "control_plane.integration_models",
    "control_plane.integration_workspaces",
    "control_plane.providers",
    "gateway.inference",
    "gateway.tools",
    "gateway.responses",
    "gateway.realtime",
    "gateway.completions",
    "gateway.moderations",
    "gateway.media",
    "gateway.models",
    "portico.diagnostics",
)


def load_registry() -> Registry:
    for module in OPERATION_MODULES:
        importlib.import_module(module)
    return REGISTRY
