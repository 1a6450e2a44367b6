"""What a simulated Bedrock fine-tune reads and reports: the datasets' line format, the hyperparameters, and the
training and validation metrics.

Training and validation lines are ``{"prompt", "completion"}`` (older text models) or ``{"messages": [...]}`` (the
conversation format of Nova and Claude-style models). Hyperparameters are strings, as on the wire; the names
Bedrock's models take are accepted when they parse as numbers in range, others refused.

Metrics follow a fixed curve, loss = 0.1 + 2.4 / (1 + step / 2), over epochs x ceil(records / batchSize) steps
(defaults: 2 epochs, batches of 1); validator i's loss is the last step's training loss + 0.05 x (i + 1). The CSVs
have Bedrock's names and columns: ``step_wise_training_metrics.csv`` (step_number, epoch_number, training_loss,
perplexity; a row a step) and ``validation_metrics.csv`` (validation_loss in place of training_loss; a row an
epoch, for the first validator).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from providers.simulators.behaviour import InvalidRequest
from providers.simulators.s3_access import S3Uri

# Where Bedrock writes the metrics, under <output s3Uri>/model-customization-job-<jobId>/.
TRAINING_CSV = ("training_artifacts", "step_wise_training_metrics.csv")
VALIDATION_CSV = ("validation_artifacts", "post_fine_tuning_validation", "validation_metrics.csv")
DEFAULT_EPOCHS = 2
DEFAULT_BATCH = 1
VALIDATION_GAP = 0.05
# Hyperparameter -> (integer?, smallest value), across the models Bedrock fine-tunes.
HYPER_PARAMETERS = {
    "epochCount": (True, 1),
    "batchSize": (True, 1),
    "learningRate": (False, 0),
    "learningRateMultiplier": (False, 0),
    "learningRateWarmupSteps": (True, 0),
    "earlyStoppingPatience": (True, 1),
    "earlyStoppingThreshold": (False, 0),
}


class BadData(Exception):
    """A dataset is not fine-tuning JSONL: the job fails in validation."""


def hyper_parameters(body: dict[str, Any]) -> dict[str, float]:
    given = body.get("hyperParameters", {})
    if not isinstance(given, dict):
        raise InvalidRequest("hyperParameters must be a map of strings")
    values: dict[str, float] = {}
    for name, raw in given.items():
        if name not in HYPER_PARAMETERS:
            raise InvalidRequest(f"hyperParameters: unknown name {name!r}; known: {', '.join(HYPER_PARAMETERS)}")
        integer, smallest = HYPER_PARAMETERS[name]
        try:
            value = float(int(raw) if integer else float(raw)) if isinstance(raw, str) else math.nan
        except ValueError:
            value = math.nan
        if not value >= smallest:  # also refuses NaN
            kind = "an integer" if integer else "a number"
            raise InvalidRequest(f"hyperParameters.{name} must be a string holding {kind} >= {smallest}, got {raw!r}")
        values[name] = value
    return values


def check_record(line: bytes, uri: S3Uri, number: int) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        raise BadData(f"line {number} of {uri} is not JSON") from None
    if not isinstance(record, dict):
        raise BadData(f"line {number} of {uri} is not a JSON object")
    prompt_completion = isinstance(record.get("prompt"), str) and isinstance(record.get("completion"), str)
    conversation = isinstance(record.get("messages"), list) and bool(record["messages"])
    if not (prompt_completion or conversation):
        raise BadData(f"line {number} of {uri} needs 'prompt' and 'completion' strings or a 'messages' list")


@dataclass(frozen=True)
class Curve:
    """A run's metrics."""

    epochs: int
    steps_per_epoch: int
    validators: int

    @classmethod
    def of(cls, records: int, validators: int, hyper: dict[str, float]) -> Curve:
        batch = int(hyper.get("batchSize", DEFAULT_BATCH))
        return cls(int(hyper.get("epochCount", DEFAULT_EPOCHS)), math.ceil(records / batch), validators)

    @property
    def training_loss(self) -> float:
        return loss(self.epochs * self.steps_per_epoch - 1)

    @property
    def validation_losses(self) -> list[float]:
        return [round(self.training_loss + VALIDATION_GAP * (i + 1), 6) for i in range(self.validators)]

    def training_rows(self) -> Iterator[bytes]:
        yield b"step_number,epoch_number,training_loss,perplexity\n"
        for step in range(self.epochs * self.steps_per_epoch):
            yield _row(step, step // self.steps_per_epoch, loss(step))

    def validation_rows(self) -> Iterator[bytes]:
        yield b"step_number,epoch_number,validation_loss,perplexity\n"
        for epoch in range(self.epochs):
            step = (epoch + 1) * self.steps_per_epoch - 1
            yield _row(step, epoch, round(loss(step) + VALIDATION_GAP, 6))


def loss(step: int) -> float:
    return round(0.1 + 2.4 / (1 + step / 2), 6)


def _row(step: int, epoch: int, value: float) -> bytes:
    return f"{step},{epoch},{value},{round(math.exp(value), 6)}\n".encode()
