"""What a simulated fine-tuning job computes: the check of a training or validation file, the hyperparameters it
resolves, and the (deterministic) metrics it reports step by step.

The check is minimal but names the first bad line: every non-blank line must be a JSON object; ``supervised`` and
``reinforcement`` examples need a non-empty ``messages`` array of objects with a known ``role`` (supervised ones at
least one ``assistant`` message); ``dpo`` examples need ``input.messages``, ``preferred_output`` and
``non_preferred_output`` arrays; a file needs at least `MIN_EXAMPLES` examples. Tokens are the words of every message
text, as the shared behaviour counts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from providers.simulators.behaviour import InvalidRequest, count_words
from providers.simulators.openai import ROLES
from providers.simulators.openai_job_state import BAD_LINE, jsonl

MIN_EXAMPLES = 10
METHODS = ("supervised", "dpo", "reinforcement")
# What "auto" resolves to once the files are validated.
AUTO: dict[str, int | float] = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
# name -> (integer only, lowest, highest) for the hyperparameters every method shares.
RANGES: dict[str, tuple[bool, float, float]] = {
    "n_epochs": (True, 1, 50),
    "batch_size": (True, 1, 256),
    "learning_rate_multiplier": (False, 1e-6, 10),
}
RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


class BadDataset(ValueError):
    """A training or validation file the job cannot use; the message names the first bad line."""


@dataclass(frozen=True)
class Dataset:
    examples: int
    tokens: int


def read_dataset(data: bytes, method: str) -> Dataset:
    examples = tokens = 0
    for number, value in jsonl(data):
        problem = _example_problem(value, method)
        if problem is not None:
            raise BadDataset(f"Line {number}: {problem}")
        assert isinstance(value, dict)  # _example_problem checked it
        examples += 1
        tokens += sum(_words(messages) for messages in _message_lists(value))
    if examples < MIN_EXAMPLES:
        raise BadDataset(f"The file has {examples} example(s); at least {MIN_EXAMPLES} are required.")
    return Dataset(examples, tokens)


def _example_problem(value: object, method: str) -> str | None:
    if value is BAD_LINE or not isinstance(value, dict):
        return "the line is not a JSON object."
    if method == "dpo":
        keys = ("preferred_output", "non_preferred_output")
        inputs = value.get("input")
        if not isinstance(inputs, dict) or not _messages_ok(inputs.get("messages")):
            return "a dpo example needs an 'input' object with a non-empty 'messages' array."
        if not all(_messages_ok(value.get(key)) for key in keys):
            return "a dpo example needs 'preferred_output' and 'non_preferred_output' message arrays."
        return None
    messages = value.get("messages")
    if not _messages_ok(messages):
        return "'messages' must be a non-empty array of objects, each with a known 'role'."
    if method == "supervised" and not any(message.get("role") == "assistant" for message in messages):
        return "a supervised example needs at least one 'assistant' message to learn from."
    return None


def _messages_ok(messages: object) -> TypeGuard[list[dict[str, Any]]]:
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(isinstance(message, dict) and message.get("role") in ROLES for message in messages)
    )


def _message_lists(example: dict[str, Any]) -> list[list[dict[str, Any]]]:
    inputs = example.get("input")
    nested = inputs.get("messages") if isinstance(inputs, dict) else None
    candidates = (example.get("messages"), nested, example.get("preferred_output"), example.get("non_preferred_output"))
    return [candidate for candidate in candidates if isinstance(candidate, list)]


def _words(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"text": content}]
        total += sum(count_words(part["text"]) for part in parts if isinstance(part, dict) and _is_text(part))
    return total


def _is_text(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str)


def check_hyperparameters(requested: object) -> dict[str, Any]:
    """The requested hyperparameters with "auto" for the shared ones not given; method-specific extras (dpo's
    ``beta``, reinforcement's ``reasoning_effort``) pass through unchecked."""
    if requested is None:
        requested = {}
    if not isinstance(requested, dict):
        raise InvalidRequest("'hyperparameters' must be an object")
    checked = {name: requested.get(name, "auto") for name in RANGES}
    for name, value in checked.items():
        integral, low, high = RANGES[name]
        kinds = (int,) if integral else (int, float)
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high):
            raise InvalidRequest(f"hyperparameter {name!r} must be 'auto' or a number between {low:g} and {high:g}")
    return {**requested, **checked}


def method_of(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The method's type and its hyperparameters (inside ``method``, or the older top-level ``hyperparameters``)."""
    method = body.get("method") or {"type": "supervised"}
    kind = method.get("type") if isinstance(method, dict) else None
    if kind not in METHODS:
        raise InvalidRequest(f"'method.type' must be one of {', '.join(METHODS)}")
    settings = method.get(kind) or {}
    requested = settings.get("hyperparameters") if isinstance(settings, dict) else None
    return kind, check_hyperparameters(requested if requested is not None else body.get("hyperparameters"))


def suffix_of(body: dict[str, Any]) -> str | None:
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64 or ":" in suffix):
        raise InvalidRequest("'suffix' must be a string of up to 64 characters without ':'")
    return suffix or None


def resolve(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    return {name: AUTO[name] if value == "auto" and name in AUTO else value for name, value in hyperparameters.items()}


def metrics(step: int, total: int, validated: bool) -> dict[str, float]:
    """A loss that decays smoothly from ~2.1 towards 0.1 over the run; validation runs 10% worse."""
    loss = 0.1 + 2.0 * math.exp(-3 * step / total)
    values = {"step": float(step), "train_loss": round(loss, 4), "train_mean_token_accuracy": _accuracy(loss)}
    if validated:
        values |= {"valid_loss": round(loss * 1.1, 4), "valid_mean_token_accuracy": _accuracy(loss * 1.1)}
    return values


def _accuracy(loss: float) -> float:
    return round(max(0.0, 1 - loss / 2.5), 4)


def results_csv(total: int, validated: bool) -> bytes:
    """The result file, one row per step, in OpenAI's column names (validation columns empty without a file)."""
    rows = [",".join(RESULT_COLUMNS)]
    for step in range(1, total + 1):
        values = metrics(step, total, validated)
        cells: list[object] = [step, values["train_loss"], values["train_mean_token_accuracy"]]
        cells += [values["valid_loss"], values["valid_mean_token_accuracy"]] if validated else ["", ""]
        rows.append(",".join(str(cell) for cell in cells))
    return ("\n".join(rows) + "\n").encode()
