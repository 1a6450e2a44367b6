"""Choosing the line converter for a provider, model family and method.

A `LineConverter` turns one parsed OpenAI fine-tuning example into the provider's training line, or raises
`TrainingDataError` (with the line number and the reason) for an example the target cannot take. Converters are
stateless, so one serves a training and a validation file alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from finetune.training.bedrock_lines import FORMATS, BedrockLineConverter
from finetune.training.errors import TrainingDataError
from finetune.training.models import check_method
from finetune.training.openai_lines import OpenAILineConverter
from finetune.training.vertex_lines import GeminiLineConverter


class LineConverter(Protocol):
    def convert(self, line_no: int, example: dict[str, Any]) -> dict[str, Any]: ...


def _bedrock(family: str, method: str) -> LineConverter:
    return BedrockLineConverter(FORMATS[family], method)


def _vertex(_: str, method: str) -> LineConverter:
    return GeminiLineConverter(method)


def _openai(_: str, method: str) -> LineConverter:
    return OpenAILineConverter(method)


_FACTORIES: dict[str, Callable[[str, str], LineConverter]] = {
    "openai": _openai,
    "bedrock": _bedrock,
    "vertex": _vertex,
}


def converter_for(adapter: str, family: str, method: str) -> LineConverter:
    """The converter for `family` (from `family_of`) on `adapter`; refuses a method the family cannot train."""
    check_method(adapter, family, method)
    factory = _FACTORIES.get(adapter)
    if factory is None:  # check_method already refuses unknown pairs; this keeps the table and the models honest
        raise TrainingDataError(f"no training-data converter for {adapter!r}", param="model", code="model_not_tunable")
    return factory(family, method)
