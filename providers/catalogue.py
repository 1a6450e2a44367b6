"""The providers Portico can route to, as data: which adapter speaks to each, where it lives by default, and which
of a virtual key's fields are secrets (encrypted at rest, never returned) and which are plain settings.

Many vendors expose OpenAI-compatible APIs; they share the `openai` adapter and differ only in base URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    adapter: str
    base_url: str = ""
    # Fields of a virtual key that are secrets: stored encrypted, never echoed.
    secret_fields: tuple[str, ...] = ("key",)
    # Non-secret settings kept in `model_config` and shown back.
    config_fields: tuple[str, ...] = ()
    # Fields a virtual key must carry for this provider.
    required: tuple[str, ...] = ("key",)
    aliases: tuple[str, ...] = field(default=())
    # The vendor runs batch jobs itself (`completion_window: "24h"` goes there); otherwise Portico runs the lines.
    batch_api: bool = False


_AZURE = ("resourceName", "deploymentName", "apiVersion", "deploymentConfig")
_BEDROCK_CONFIG = ("awsRegion", "awsRoleArn", "awsS3Bucket")
_BEDROCK_SECRETS = ("awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken")
_VERTEX_CONFIG = ("vertexProjectId", "vertexRegion", "vertexStorageBucketName")

_SPECS = [
    ProviderSpec("openai", "openai", "https://api.openai.com/v1", aliases=("open-ai",), batch_api=True),
    ProviderSpec("azure-openai", "openai", config_fields=_AZURE, required=("key", "resourceName")),
    ProviderSpec(
        "bedrock",
        "bedrock",
        secret_fields=_BEDROCK_SECRETS,
        config_fields=_BEDROCK_CONFIG,
        required=("awsAccessKeyId", "awsSecretAccessKey", "awsRegion"),
        batch_api=True,
    ),
    ProviderSpec(
        "vertex-ai",
        "vertex",
        # `key`: a ready OAuth access token, as an alternative to the service-account JSON.
        secret_fields=("vertexServiceAccountJson", "key"),
        config_fields=_VERTEX_CONFIG,
        required=("vertexProjectId", "vertexRegion"),
        batch_api=True,
    ),
    ProviderSpec("groq", "openai", "https://api.groq.com/openai/v1"),
    ProviderSpec("together-ai", "openai", "https://api.together.xyz/v1"),
    ProviderSpec("fireworks-ai", "openai", "https://api.fireworks.ai/inference/v1"),
    ProviderSpec("deepinfra", "openai", "https://api.deepinfra.com/v1/openai"),
    ProviderSpec("openrouter", "openai", "https://openrouter.ai/api/v1"),
    ProviderSpec("perplexity-ai", "openai", "https://api.perplexity.ai"),
    ProviderSpec("mistral-ai", "openai", "https://api.mistral.ai/v1"),
    ProviderSpec("anyscale", "openai", "https://api.endpoints.anyscale.com/v1"),
    ProviderSpec("moonshot", "openai", "https://api.moonshot.cn/v1"),
    ProviderSpec("novita-ai", "openai", "https://api.novita.ai/v3/openai"),
    ProviderSpec("lingyi", "openai", "https://api.lingyiwanwu.com/v1"),
    ProviderSpec("zhipu", "openai", "https://open.bigmodel.cn/api/paas/v4"),
    # Any OpenAI-compatible server reached through `custom_host` (vLLM, Ollama, LM Studio, …).
    ProviderSpec("openai-compatible", "openai", required=()),
]

PROVIDERS: dict[str, ProviderSpec] = {spec.name: spec for spec in _SPECS}
PROVIDERS.update({alias: spec for spec in _SPECS for alias in spec.aliases})

# Every field a virtual key may carry beyond name/note/limits, and whether it is secret.
SECRET_FIELDS = frozenset(f for spec in _SPECS for f in spec.secret_fields)
CONFIG_FIELDS = frozenset(f for spec in _SPECS for f in spec.config_fields) | {"customHost"}


def provider_spec(name: str) -> ProviderSpec | None:
    return PROVIDERS.get(name.lower().strip())


def supported_names() -> list[str]:
    return sorted(PROVIDERS)
