"""OpenAI trains on its own format, so its converter passes each example through unchanged, after checking the
example suits the method: supervised jobs take chat examples (the tunable chat models take no legacy
prompt/completion pairs, which were for babbage-002/davinci-002), dpo jobs take preference examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune.training.examples import require_shape

_SHAPES = frozenset({"chat", "preference"})


@dataclass(frozen=True)
class OpenAILineConverter:
    method: str

    def convert(self, line_no: int, example: dict[str, Any]) -> dict[str, Any]:
        require_shape(line_no, example, self.method, _SHAPES, "OpenAI fine-tuning of chat models")
        return example
