"""Batch drivers by adapter name (`providers.catalogue.ProviderSpec.adapter`): a dict lookup, never a chain."""

from __future__ import annotations

from batch.native.base import BatchDriver
from batch.native.bedrock_driver import BedrockDriver
from batch.native.openai_driver import OpenAIDriver
from batch.native.vertex_driver import VertexDriver

DRIVERS: dict[str, BatchDriver] = {
    "openai": OpenAIDriver(),
    "bedrock": BedrockDriver(),
    "vertex": VertexDriver(),
}
