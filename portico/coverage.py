"""Spec coverage: which of the spec's operations (method + path) the registry serves, by tag.

`spec/operations.json` is a compact copy of the spec's operation list (method, path, tag, operationId, summary),
generated from `shared/spec/operations.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from portico.registry import Registry


@dataclass
class TagCoverage:
    tag: str
    implemented: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def spec_operations() -> list[dict[str, str]]:
    text = resources.files("portico").joinpath("spec/operations.json").read_text()
    rows: list[dict[str, str]] = json.loads(text)
    return rows


def coverage(registry: Registry) -> list[TagCoverage]:
    served = {op.spec_key for op in registry.rest_operations()}
    by_tag: dict[str, TagCoverage] = {}
    for row in spec_operations():
        entry = by_tag.setdefault(row["tag"], TagCoverage(row["tag"]))
        label = f"{row['method']} {row['path']}"
        (entry.implemented if (row["method"], row["path"]) in served else entry.missing).append(label)
    return sorted(by_tag.values(), key=lambda t: (-len(t.implemented), t.tag))


def unknown_operations(registry: Registry) -> list[str]:
    """Registry operations claiming a method + path the spec does not have (a typo guard, checked in tests)."""
    spec = {(row["method"], row["path"]) for row in spec_operations()}
    return [f"{op.method} {op.path}" for op in registry.rest_operations() if op.spec_key not in spec]
