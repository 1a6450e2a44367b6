"""Names of a managed batch's working state in Redis and of its arq jobs, in one place.

A batch runs as steps: `plan`, one `chunk:<n>` per slice of its input, and `finalize`. Each step has a generation
(a counter in the batch's `generations` hash) and runs as the arq job `batch:<id>:<step>:g<generation>`. A new
generation gets a new job id, so a step can be re-run while arq still holds the dead one: arq keeps a SIGKILLed
job's id (queued, "in progress") until its in-progress key expires, the longest job timeout + 10 s later.

Everything under `portico:batch:<id>:` can be lost: the reconciler rebuilds it from the SQL rows (DESIGN.md §2).
"""

from __future__ import annotations

PLAN = "plan"
FINALIZE = "finalize"
PLAN_FUNCTION = "batch_managed_plan"
CHUNK_FUNCTION = "batch_managed_chunk"
FINALIZE_FUNCTION = "batch_managed_finalize"


def chunk_step(index: int) -> str:
    return f"chunk:{index}"


def _base(batch_id: str) -> str:
    return f"portico:batch:{batch_id}"


def generations(batch_id: str) -> str:
    """Hash step → current generation."""
    return f"{_base(batch_id)}:generations"


def started(batch_id: str) -> str:
    """Hash step → the generation that last took the step's lease (it started; if no lease is held now, it ended)."""
    return f"{_base(batch_id)}:started"


def claimed(batch_id: str) -> str:
    """Hash step → `<generation>:<ms>`: when a pass first saw that generation's arq job claimed by a worker but not
    started (arq marks a job in progress just before running it; a worker killed in between leaves it so)."""
    return f"{_base(batch_id)}:claimed"


def lease(batch_id: str, step: str) -> str:
    """The runner's token while a step runs, with a TTL its heartbeat keeps pushing back."""
    return f"{_base(batch_id)}:{step}:lease"


def succeeded_lines(batch_id: str, index: int) -> str:
    """Hash physical line number → the finished output line, for one chunk's lines that got a 2xx."""
    return f"{_base(batch_id)}:{chunk_step(index)}:ok"


def failed_lines(batch_id: str, index: int) -> str:
    """Hash physical line number → the finished error line."""
    return f"{_base(batch_id)}:{chunk_step(index)}:failed"


def counts(batch_id: str) -> str:
    """Hash `completed` / `failed`: the live request counts of the whole batch."""
    return f"{_base(batch_id)}:counts"


def stop(batch_id: str) -> str:
    """Why runners must stop sending (`cancelled` or `expired`); absent while the batch may run."""
    return f"{_base(batch_id)}:stop"


def progress(batch_id: str) -> str:
    """A short-lived marker that throttles progress announcements across processes."""
    return f"{_base(batch_id)}:progress"


def final(batch_id: str) -> str:
    """A tombstone left for a while once the batch is final, so a reconciler pass that read the batch just before
    does not bring its state back (steps, counters)."""
    return f"{_base(batch_id)}:final"


def job_id(batch_id: str, step: str, generation: int) -> str:
    return f"batch:{batch_id}:{step}:g{generation}"


def every_key(batch_id: str, chunk_indices: list[int]) -> list[str]:
    """Every key the batch may have left in Redis, for the clean-up once it is final."""
    names = [generations(batch_id), started(batch_id), claimed(batch_id), counts(batch_id), stop(batch_id)]
    names.append(progress(batch_id))
    names += [lease(batch_id, step) for step in (PLAN, FINALIZE)]
    for index in chunk_indices:
        names += [succeeded_lines(batch_id, index), failed_lines(batch_id, index), lease(batch_id, chunk_step(index))]
    return names
