"""Provider credentials as callers send them: checked against the provider catalogue and split into secrets (sealed
with `SecretBox`, never returned) and settings (stored and shown back). Shared by virtual keys and integrations, so
the gateway reads the credentials of both alike.

Virtual keys name their fields as the catalogue does, at the top level (`awsRegion`). Integrations use the spec's
snake_case inside `configurations` (`aws_region`): those names are mapped onto the catalogue's on the way in and
back on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.errors import InvalidRequest
from portico.ids import mask_key
from portico.registry import snake_case
from providers.catalogue import CONFIG_FIELDS, SECRET_FIELDS, ProviderSpec, provider_spec, supported_names

Fields = dict[str, Any]

# Where the spec's Azure field names differ from the catalogue's (and from their plain camelCase form).
_AZURE_NAMES = {
    "azure_resource_name": "resourceName",
    "azure_deployment_name": "deploymentName",
    "azure_api_version": "apiVersion",
    "azure_deployment_config": "deploymentConfig",
}
_SPEC_NAMES = {stored: spec for spec, stored in _AZURE_NAMES.items()}
# Fields of the spec's configuration schemas that no adapter reads yet. They are kept under their own names (the
# secret ones sealed) so what a client configures reads back rather than vanishing.
SPEC_ONLY_SETTINGS = frozenset(
    {
        "aws_auth_type",
        "aws_external_id",
        "vertex_auth_type",
        "openai_organization",
        "openai_project",
        "azure_auth_mode",
        "azure_entra_tenant_id",
        "azure_entra_client_id",
        "azure_managed_client_id",
        "azure_foundry_url",
        "workers_ai_account_id",
        "huggingface_base_url",
        "snowflake_account",
        "amzn_sagemaker_custom_attributes",
        "amzn_sagemaker_target_model",
        "amzn_sagemaker_target_variant",
        "amzn_sagemaker_target_container_hostname",
        "amzn_sagemaker_inference_id",
        "amzn_sagemaker_enable_explanations",
        "amzn_sagemaker_inference_component",
        "amzn_sagemaker_session_id",
        "amzn_sagemaker_model_name",
    }
)
# custom_headers may carry credentials (an Authorization header), so it is sealed like one.
SPEC_ONLY_SECRETS = frozenset({"azure_entra_client_secret", "custom_headers"})
# Catalogue fields whose values are structured; every other catalogue field is a string.
_STRUCTURED = frozenset({"deploymentConfig", "vertexServiceAccountJson"})


def spec_for(provider: str, param: str = "provider") -> ProviderSpec:
    spec = provider_spec(provider)
    if spec is None:
        raise InvalidRequest(
            f"Unsupported provider '{provider}'; supported: {', '.join(supported_names())}.",
            param=param,
            code="unsupported_provider",
        )
    return spec


def _as_sent(name: str) -> str:
    return name


def check_required(
    spec: ProviderSpec,
    present: Mapping[str, Any],
    kind: str = "virtual key",
    wire_name: Callable[[str], str] = _as_sent,
) -> None:
    """Refuse credentials that lack a field the provider's adapter needs, naming it as the caller spells it."""
    missing = [wire_name(name) for name in spec.required if not present.get(name)]
    if missing:
        raise InvalidRequest(
            f"A '{spec.name}' {kind} needs {missing}.", param=missing[0], code="missing_provider_field"
        )


def partition(found: Mapping[str, Any]) -> tuple[Fields, Fields]:
    """(secrets, settings) of fields named as the catalogue names them; anything else is dropped."""
    return (
        {k: v for k, v in found.items() if k in SECRET_FIELDS},
        {k: v for k, v in found.items() if k in CONFIG_FIELDS},
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def stored_name(spec_name: str) -> str | None:
    """The name a `configurations` field is stored under, or None when neither the catalogue nor the spec has it."""
    if spec_name in _AZURE_NAMES:
        return _AZURE_NAMES[spec_name]
    if spec_name in SPEC_ONLY_SETTINGS or spec_name in SPEC_ONLY_SECRETS:
        return spec_name
    camel = _camel(spec_name)
    # The provider key travels as the top-level `key`, never inside `configurations`.
    return camel if camel != "key" and (camel in SECRET_FIELDS or camel in CONFIG_FIELDS) else None


def spec_name(stored: str) -> str:
    return _SPEC_NAMES.get(stored) or snake_case(stored)


def integration_param(stored: str) -> str:
    """How a request names a stored field: `key`, or `configurations.<snake_case name>`."""
    return "key" if stored == "key" else f"configurations.{spec_name(stored)}"


@dataclass
class Configuration:
    """An integration request's credentials under their stored names; `removed` are fields it set to null."""

    secrets: Fields = field(default_factory=dict)
    settings: Fields = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def applied_to(self, secrets: Fields, settings: Fields) -> tuple[Fields, Fields]:
        """Stored (secrets, settings) with this request's changes merged in: an update sends only what changes."""
        merged_secrets = {k: v for k, v in {**secrets, **self.secrets}.items() if k not in self.removed}
        merged_settings = {k: v for k, v in {**settings, **self.settings}.items() if k not in self.removed}
        return merged_secrets, merged_settings


def _stored_value(stored: str, value: Any, param: str) -> Any:
    if stored == "vertexServiceAccountJson" and isinstance(value, dict):
        # The spec sends the service account as an object; the Vertex adapter reads it as JSON text.
        return json.dumps(value)
    if (
        stored not in _STRUCTURED
        and (stored in SECRET_FIELDS or stored in CONFIG_FIELDS)
        and not isinstance(value, str)
    ):
        raise InvalidRequest(f"{param} must be a string.", param=param, code="invalid_type")
    return value


def read_configuration(configurations: Mapping[str, Any], key: str | None) -> Configuration:
    """An integration's `configurations` (and top-level `key`) under stored names; unknown fields are refused so a
    typo is not silently lost."""
    unknown = sorted(name for name in configurations if stored_name(name) is None)
    if unknown:
        raise InvalidRequest(
            f"Unknown configuration fields: {unknown}.", param=f"configurations.{unknown[0]}", code="unknown_field"
        )
    found = Configuration()
    for name, value in configurations.items():
        stored = stored_name(name)
        assert stored is not None  # unknown names were refused above
        if value is None:
            found.removed.add(stored)
        elif stored in SECRET_FIELDS or stored in SPEC_ONLY_SECRETS:
            found.secrets[stored] = _stored_value(stored, value, f"configurations.{name}")
        else:
            found.settings[stored] = _stored_value(stored, value, f"configurations.{name}")
    if key is not None:
        found.secrets["key"] = key
    return found


def mask(name: str, value: Any) -> str:
    """Enough of a secret to recognise it by (`sk-a*******yz`); nothing of a short or structured one (a service
    account is stored as JSON text, whose ends would show only its punctuation and first key)."""
    if isinstance(value, str) and len(value) >= 16 and name not in _STRUCTURED:
        return mask_key(value)
    return "********"


def masks_of(secrets: Mapping[str, Any]) -> Fields:
    return {name: mask(name, value) for name, value in secrets.items()}


def shown_configuration(settings: Mapping[str, Any], secret_masks: Mapping[str, Any]) -> Fields:
    """`configurations` as the spec shows it: settings as they are, secrets only masked under `masked_<name>`."""
    shown = {spec_name(name): value for name, value in settings.items()}
    shown.update({f"masked_{spec_name(name)}": value for name, value in secret_masks.items() if name != "key"})
    return shown
