"""Adapters by the name `providers.catalogue` gives them: a dict lookup, never a chain of provider branches."""

from __future__ import annotations

from providers.adapters.base import ProviderAdapter
from providers.adapters.bedrock import BedrockAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.adapters.vertex import VertexAdapter
from providers.catalogue import ProviderSpec

ADAPTERS: dict[str, ProviderAdapter] = {
    "openai": OpenAIAdapter(),
    "bedrock": BedrockAdapter(),
    "vertex": VertexAdapter(),
}


def adapter_for(spec: ProviderSpec) -> ProviderAdapter:
    return ADAPTERS[spec.adapter]
