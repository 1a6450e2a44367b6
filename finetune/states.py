"""A fine-tuning job's life, in OpenAI's vocabulary, and how Bedrock's and Vertex's states map onto it
(PROVIDERS.md). `validating_files` is Portico's own state while it validates and stages the training data."""

from __future__ import annotations

from enum import StrEnum

from portico.state_machine import StateMachine


class FineTuneStatus(StrEnum):
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


F = FineTuneStatus
FINE_TUNE = StateMachine[FineTuneStatus](
    "fine-tuning job",
    {
        F.VALIDATING_FILES: frozenset({F.QUEUED, F.RUNNING, F.FAILED, F.CANCELLED}),
        F.QUEUED: frozenset({F.RUNNING, F.FAILED, F.CANCELLED}),
        F.RUNNING: frozenset({F.SUCCEEDED, F.FAILED, F.CANCELLED}),
        F.SUCCEEDED: frozenset(),
        F.FAILED: frozenset(),
        F.CANCELLED: frozenset(),
    },
)

# Bedrock has no queued state of its own; Stopping already counts as cancelled, as the table says.
BEDROCK_FINE_TUNE_STATES: dict[str, FineTuneStatus] = {
    "InProgress": F.RUNNING,
    "Completed": F.SUCCEEDED,
    "Failed": F.FAILED,
    "Stopping": F.CANCELLED,
    "Stopped": F.CANCELLED,
}

VERTEX_FINE_TUNE_STATES: dict[str, FineTuneStatus] = {
    "JOB_STATE_QUEUED": F.QUEUED,
    "JOB_STATE_PENDING": F.QUEUED,
    "JOB_STATE_PAUSED": F.QUEUED,
    "JOB_STATE_RUNNING": F.RUNNING,
    "JOB_STATE_UPDATING": F.RUNNING,
    "JOB_STATE_SUCCEEDED": F.SUCCEEDED,
    "JOB_STATE_FAILED": F.FAILED,
    "JOB_STATE_CANCELLING": F.CANCELLED,
    "JOB_STATE_CANCELLED": F.CANCELLED,
    "JOB_STATE_EXPIRED": F.CANCELLED,
}

OPENAI_FINE_TUNE_STATES: dict[str, FineTuneStatus] = {status.value: status for status in FineTuneStatus}

FINE_TUNE_STATES_BY_PROVIDER: dict[str, dict[str, FineTuneStatus]] = {
    "openai": OPENAI_FINE_TUNE_STATES,
    "bedrock": BEDROCK_FINE_TUNE_STATES,
    "vertex": VERTEX_FINE_TUNE_STATES,
}


def map_fine_tune_state(adapter: str, raw_state: str) -> FineTuneStatus:
    """The OpenAI status for a provider's raw job state; an unknown state raises (it must be added, not guessed)."""
    try:
        return FINE_TUNE_STATES_BY_PROVIDER[adapter][raw_state]
    except KeyError:
        raise ValueError(f"unknown {adapter} fine-tuning state {raw_state!r}: add it to finetune/states.py") from None
