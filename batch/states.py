"""A batch's life, in OpenAI's vocabulary, and how each provider's job states map onto it (PROVIDERS.md).

The raw provider state is always kept beside the mapped one; partial success maps to `completed` and is surfaced
through `request_counts.failed` and the error file, never hidden.
"""

from __future__ import annotations

from enum import StrEnum

from portico.state_machine import StateMachine


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


S = BatchStatus
BATCH = StateMachine[BatchStatus](
    "batch",
    {
        S.VALIDATING: frozenset({S.IN_PROGRESS, S.FAILED, S.CANCELLING, S.EXPIRED}),
        S.IN_PROGRESS: frozenset({S.FINALIZING, S.EXPIRED, S.CANCELLING, S.FAILED}),
        S.FINALIZING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLING, S.EXPIRED}),
        S.CANCELLING: frozenset({S.CANCELLED}),
        S.COMPLETED: frozenset(),
        S.FAILED: frozenset(),
        S.EXPIRED: frozenset(),
        S.CANCELLED: frozenset(),
    },
)

# Provider job state → OpenAI batch status. `finalizing` has no provider state: Portico enters it itself while it
# converts a provider's output into OpenAI output lines.
BEDROCK_BATCH_STATES: dict[str, BatchStatus] = {
    "Submitted": S.VALIDATING,
    "Validating": S.VALIDATING,
    "Scheduled": S.VALIDATING,
    "InProgress": S.IN_PROGRESS,
    "Completed": S.COMPLETED,
    "PartiallyCompleted": S.COMPLETED,
    "Failed": S.FAILED,
    "Stopping": S.CANCELLING,
    "Stopped": S.CANCELLED,
    "Expired": S.EXPIRED,
}

VERTEX_BATCH_STATES: dict[str, BatchStatus] = {
    "JOB_STATE_QUEUED": S.VALIDATING,
    "JOB_STATE_PENDING": S.VALIDATING,
    "JOB_STATE_PAUSED": S.VALIDATING,
    "JOB_STATE_UNSPECIFIED": S.VALIDATING,
    "JOB_STATE_RUNNING": S.IN_PROGRESS,
    "JOB_STATE_UPDATING": S.IN_PROGRESS,
    "JOB_STATE_SUCCEEDED": S.COMPLETED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": S.COMPLETED,
    "JOB_STATE_FAILED": S.FAILED,
    "JOB_STATE_CANCELLING": S.CANCELLING,
    "JOB_STATE_CANCELLED": S.CANCELLED,
    "JOB_STATE_EXPIRED": S.EXPIRED,
}

# OpenAI's own states are already the vocabulary.
OPENAI_BATCH_STATES: dict[str, BatchStatus] = {status.value: status for status in BatchStatus}

BATCH_STATES_BY_PROVIDER: dict[str, dict[str, BatchStatus]] = {
    "openai": OPENAI_BATCH_STATES,
    "bedrock": BEDROCK_BATCH_STATES,
    "vertex": VERTEX_BATCH_STATES,
}

# Provider states that mean "done, but some requests failed": the batch is `completed`, and the caller must see
# the failures in request_counts and the error file.
PARTIAL_SUCCESS = frozenset({"PartiallyCompleted", "JOB_STATE_PARTIALLY_SUCCEEDED"})


def map_batch_state(adapter: str, raw_state: str) -> BatchStatus:
    """The OpenAI status for a provider's raw job state; an unknown state raises (it must be added, not guessed)."""
    try:
        return BATCH_STATES_BY_PROVIDER[adapter][raw_state]
    except KeyError:
        raise ValueError(f"unknown {adapter} batch state {raw_state!r}: add it to batch/states.py") from None
