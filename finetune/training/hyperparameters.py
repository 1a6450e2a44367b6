"""OpenAI fine-tuning hyperparameters -> each provider's, checked against the ranges the target family accepts.

Input is OpenAI's `{n_epochs, batch_size, learning_rate_multiplier}`, each a number or "auto" (plus `beta` for
OpenAI DPO, and `adapter_size`, a Portico extension for Vertex's LoRA rank). "auto" is left out of the provider's
body, so the provider applies its own default. Outputs:

- OpenAI: the same object, checked, without the "auto" values (omitting one is how OpenAI spells its default).
- Bedrock: `hyperParameters`, a map of strings (the API types every value as a string): `epochCount`, `batchSize`
  where the family lets it be set, and the learning rate. OpenAI's multiplier scales a base rate OpenAI picks per
  job; Bedrock wants an absolute `learningRate`, so Portico scales the family's documented default rate instead
  (multiplier 1 = Bedrock's default, 2 = twice it). Claude 3 Haiku takes a multiplier itself, passed through.
- Vertex: `supervisedTuningSpec.hyperParameters` `{epochCount, learningRateMultiplier, adapterSize}`; Vertex's
  multiplier scales its own recommended rate, exactly like OpenAI's, so it passes through. Vertex picks the batch size.

Ranges are from AWS's per-model hyperparameter tables and OpenAI's API reference; a value outside the target's range
is refused (naming it) rather than clamped, so a job never trains on settings the caller did not ask for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finetune.training.errors import TrainingDataError


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool = False

    def holds(self, value: object) -> bool:
        kinds = (int,) if self.integer else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool) and self.low <= value <= self.high

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        return f"{kind} from {self.low:g} to {self.high:g}"


# What OpenAI's API accepts, so every target sees sane numbers; a multiplier of 0 would not train at all.
OPENAI_BOUNDS: dict[str, Bound] = {
    "n_epochs": Bound(1, 50, integer=True),
    "batch_size": Bound(1, 256, integer=True),
    "learning_rate_multiplier": Bound(1e-6, 10),
}
# Names beyond the shared three that an adapter takes.
EXTRA_BOUNDS: dict[str, dict[str, Bound]] = {
    "openai": {"beta": Bound(1e-6, 2)},
    "vertex": {"adapter_size": Bound(1, 32, integer=True)},
}
VERTEX_ADAPTER_SIZES = {1: "ONE", 2: "TWO", 4: "FOUR", 8: "EIGHT", 16: "SIXTEEN", 32: "THIRTY_TWO"}


@dataclass(frozen=True)
class BedrockFamily:
    """A Bedrock family's accepted ranges. `batch` None: the family does not let the batch size be set."""

    epochs: Bound
    batch: Bound | None
    rate_name: str  # "learningRate", or "learningRateMultiplier" where the family takes a multiplier
    base_rate: float  # the family's default for `rate_name`, which OpenAI's multiplier scales
    rate: Bound


BEDROCK_FAMILIES: dict[str, BedrockFamily] = {
    "nova": BedrockFamily(Bound(1, 5, True), None, "learningRate", 1e-5, Bound(1e-6, 1e-4)),
    "anthropic": BedrockFamily(Bound(1, 10, True), Bound(4, 256, True), "learningRateMultiplier", 1.0, Bound(0.1, 2)),
    "titan-text": BedrockFamily(Bound(1, 10, True), Bound(1, 64, True), "learningRate", 1e-5, Bound(1e-9, 1)),
    "llama": BedrockFamily(Bound(1, 10, True), Bound(1, 1, True), "learningRate", 1e-4, Bound(5e-6, 0.1)),
    "llama-vision": BedrockFamily(Bound(1, 10, True), Bound(1, 1, True), "learningRate", 1e-4, Bound(5e-6, 0.1)),
}


def _refuse(name: str, message: str) -> TrainingDataError:
    return TrainingDataError(message, param=f"hyperparameters.{name}", code="invalid_hyperparameter")


def _checked(adapter: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The given values, each "auto" or within OpenAI's bounds (and the adapter's extras)."""
    bounds = {**OPENAI_BOUNDS, **EXTRA_BOUNDS.get(adapter, {})}
    for name, value in hyperparameters.items():
        bound = bounds.get(name)
        if bound is None:
            raise _refuse(name, f"unknown hyperparameter {name!r} for {adapter}; known: {', '.join(bounds)}")
        if value != "auto" and not bound.holds(value):
            raise _refuse(name, f"{name} must be 'auto' or {bound.describe()}, got {value!r}")
    return {name: value for name, value in hyperparameters.items() if value != "auto"}


def _fit(name: str, value: float, bound: Bound | None, target: str) -> float:
    if bound is None:
        raise _refuse(name, f"{target} chooses {name} itself; leave it unset or 'auto'")
    if not bound.holds(value):
        raise _refuse(name, f"{target} takes {name} as {bound.describe()}, got {value!r}")
    return value


def _decimal(value: float) -> str:
    # Six significant digits drop float noise (3 x 1e-5 = 3.0000000000000004e-05); plain notation reads everywhere.
    return format(Decimal(f"{value:.6g}").normalize(), "f")


def _openai(_: str, given: dict[str, Any]) -> dict[str, Any]:
    return given


def _bedrock(family: str, given: dict[str, Any]) -> dict[str, Any]:
    rules, target = BEDROCK_FAMILIES[family], f"Bedrock {family}"
    out: dict[str, Any] = {}
    if "n_epochs" in given:
        out["epochCount"] = str(int(_fit("n_epochs", given["n_epochs"], rules.epochs, target)))
    if "batch_size" in given:
        out["batchSize"] = str(int(_fit("batch_size", given["batch_size"], rules.batch, target)))
    if "learning_rate_multiplier" in given:
        multiplier = given["learning_rate_multiplier"]
        rate = rules.base_rate * multiplier
        if not rules.rate.holds(rate):
            low, high = rules.rate.low / rules.base_rate, rules.rate.high / rules.base_rate
            raise _refuse(
                "learning_rate_multiplier",
                f"{target} takes {rules.rate_name} {rules.rate.describe()}; as a multiplier of its default "
                f"{rules.base_rate:g} that is {low:g} to {high:g}, got {multiplier!r}",
            )
        out[rules.rate_name] = _decimal(rate)
    return out


def _vertex(_: str, given: dict[str, Any]) -> dict[str, Any]:
    target, out = "Vertex Gemini tuning", {}
    if "batch_size" in given:
        _fit("batch_size", given["batch_size"], None, target)
    if "n_epochs" in given:
        out["epochCount"] = given["n_epochs"]
    if "learning_rate_multiplier" in given:
        out["learningRateMultiplier"] = given["learning_rate_multiplier"]
    if "adapter_size" in given:
        size = VERTEX_ADAPTER_SIZES.get(given["adapter_size"])
        if size is None:
            raise _refuse("adapter_size", f"{target} takes adapter_size {', '.join(map(str, VERTEX_ADAPTER_SIZES))}")
        out["adapterSize"] = f"ADAPTER_SIZE_{size}"
    return out


_TARGETS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "openai": _openai,
    "bedrock": _bedrock,
    "vertex": _vertex,
}


def hyperparameters_for(adapter: str, family: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The provider's hyperparameters for `family` (from `family_of`) on `adapter`, from OpenAI's."""
    target = _TARGETS.get(adapter)
    if target is None:
        raise TrainingDataError(f"{adapter!r} has no fine-tuning", param="model", code="model_not_tunable")
    return target(family, _checked(adapter, hyperparameters))
