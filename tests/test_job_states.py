"""Job state machines, and every provider state mapped exactly as PROVIDERS.md's tables say: one test per state
per provider, the expectations read from the document itself (CI has shared/ beside the checkout)."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

from batch.states import BATCH, BatchStatus, map_batch_state
from finetune.states import FINE_TUNE, FineTuneStatus, map_fine_tune_state
from portico.state_machine import IllegalTransition

PROVIDERS_MD = Path(__file__).resolve().parents[2] / "shared" / "PROVIDERS.md"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _names(cell: str) -> list[str]:
    """`Completed, PartiallyCompleted (note)` → the names; `—`, a note alone, or `same` (as the previous column,
    used where that column is itself only a note) → none."""
    cell = re.sub(r"\(.*?\)", "", cell)
    return [name.strip() for name in cell.split(",") if name.strip() and name.strip() not in ("—", "same")]


def status_table(heading: str) -> list[tuple[str, str, str]]:
    """(provider, raw state, OpenAI status) rows of the table whose first header cell is `heading`."""
    if not PROVIDERS_MD.exists():
        return []
    lines = PROVIDERS_MD.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows: list[tuple[str, str, str]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        openai_cell, bedrock_cell, vertex_cell = _cells(line)
        statuses = [s.strip(" `") for s in openai_cell.split("/")]
        bedrock_sides = bedrock_cell.split("/") if len(statuses) > 1 else [bedrock_cell]
        vertex_sides = vertex_cell.split("/") if len(statuses) > 1 else [vertex_cell]
        for status, bedrock, vertex in zip(statuses, bedrock_sides, vertex_sides, strict=True):
            rows += [("bedrock", name, status) for name in _names(bedrock)]
            rows += [("vertex", f"JOB_STATE_{name}", status) for name in _names(vertex)]
    return rows


BATCH_ROWS = status_table("OpenAI batch")
FINE_TUNE_ROWS = status_table("OpenAI fine-tune")


def test_the_document_was_read() -> None:
    if not PROVIDERS_MD.exists() and not os.environ.get("CI"):
        pytest.skip(f"{PROVIDERS_MD} is not beside this checkout (CI always has it)")
    assert len(BATCH_ROWS) >= 20 and len(FINE_TUNE_ROWS) >= 13


@pytest.mark.parametrize(("provider", "raw", "expected"), BATCH_ROWS, ids=[f"{p}-{r}" for p, r, _ in BATCH_ROWS])
def test_batch_state_maps_as_documented(provider: str, raw: str, expected: str) -> None:
    assert map_batch_state(provider, raw) == BatchStatus(expected)


@pytest.mark.parametrize(
    ("provider", "raw", "expected"), FINE_TUNE_ROWS, ids=[f"{p}-{r}" for p, r, _ in FINE_TUNE_ROWS]
)
def test_fine_tune_state_maps_as_documented(provider: str, raw: str, expected: str) -> None:
    assert map_fine_tune_state(provider, raw) == FineTuneStatus(expected)


@pytest.mark.parametrize("status", list(BatchStatus))
def test_openai_batch_states_map_to_themselves(status: BatchStatus) -> None:
    assert map_batch_state("openai", status.value) is status


def test_an_unknown_state_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="add it"):
        map_batch_state("bedrock", "Teleporting")
    with pytest.raises(ValueError, match="add it"):
        map_fine_tune_state("vertex", "JOB_STATE_DREAMING")


def test_batch_machine_walks_the_happy_path_and_guards_terminal_states() -> None:
    path = [BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING, BatchStatus.COMPLETED]
    for current, new in itertools.pairwise(path):
        assert BATCH.check(current, new) is new
    assert BATCH.terminal == {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
    for terminal in BATCH.terminal:
        with pytest.raises(IllegalTransition, match="it is finished"):
            BATCH.check(terminal, BatchStatus.IN_PROGRESS)
    with pytest.raises(IllegalTransition, match="does not follow"):
        BATCH.check(BatchStatus.CANCELLING, BatchStatus.COMPLETED)
    assert BATCH.check(BatchStatus.CANCELLING, BatchStatus.CANCELLING) is BatchStatus.CANCELLING


def test_fine_tune_machine_guards_terminal_states() -> None:
    assert FINE_TUNE.terminal == {FineTuneStatus.SUCCEEDED, FineTuneStatus.FAILED, FineTuneStatus.CANCELLED}
    with pytest.raises(IllegalTransition):
        FINE_TUNE.check(FineTuneStatus.SUCCEEDED, FineTuneStatus.RUNNING)
    assert FINE_TUNE.check(FineTuneStatus.QUEUED, FineTuneStatus.RUNNING) is FineTuneStatus.RUNNING
