"""Fine-tuning drivers by adapter name (`providers.catalogue.ProviderSpec.adapter`): a dict lookup, never a chain."""

from __future__ import annotations

from finetune.drivers.base import TuneDriver
from finetune.drivers.bedrock import BedrockDriver
from finetune.drivers.openai import OpenAIDriver
from finetune.drivers.vertex import VertexDriver
from providers.catalogue import provider_spec

DRIVERS: dict[str, TuneDriver] = {
    "openai": OpenAIDriver(),
    "bedrock": BedrockDriver(),
    "vertex": VertexDriver(),
}


# The providers whose own fine-tuning API a driver speaks (other OpenAI-compatible vendors share the adapter, not the
# fine-tuning API).
FINE_TUNING_PROVIDERS = frozenset({"openai", "bedrock", "vertex-ai"})


def adapter_of(provider: str) -> str:
    spec = provider_spec(provider)
    return spec.adapter if spec else provider
