"""The one error training-data checks raise: the data, model, method or hyperparameters cannot be trained.

It is an `InvalidRequest` (REST answers 400 with `param` and `code`; a worker records the message on the job) and a
`ValueError`, so callers that only know the standard library can still catch it. Per-line errors carry the 1-based
physical line number (as `files/jsonl.py` counts them) and their message starts with `line N:`.
"""

from __future__ import annotations

from portico.errors import InvalidRequest


class TrainingDataError(InvalidRequest, ValueError):
    """`param` is the request field to fix: `training_file`, `model`, `method` or `hyperparameters.<name>`."""

    def __init__(self, message: str, *, param: str, code: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, param=param, code=code)
        self.line = line


def bad_line(line: int, message: str, code: str = "unsupported_example") -> TrainingDataError:
    """A training line the target cannot take; the caller names the file field when it knows which one."""
    return TrainingDataError(message, param="training_file", code=code, line=line)
