"""What a provider's fine-tuning API looks like to Portico: one driver per adapter (OpenAI, Bedrock, Vertex), chosen
by a dict lookup on the adapter name (`finetune.drivers.registry.DRIVERS`).

A driver is stateless: what it learns (the provider's job id, staged URIs, provider file ids) goes into the job row
through `TuneJob.adopt` and `TuneJob.remember`, so any worker, after any restart, can take the next step. Each poll
returns a `ProviderTune`: the raw state, the outcome once there is one, and the events and checkpoints the driver
saw, as drafts keyed so that seeing them again records nothing new (`finetune.events`).

Errors are batch.native's two (re-exported here): `ProviderRefused` (a permanent no — the job fails with the
message) and `ProviderUnavailable` (try again at the next poll).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from batch.native.base import ProviderRefused, ProviderUnavailable
from finetune import store
from finetune.events import CheckpointDraft, EventDraft

if TYPE_CHECKING:
    from finetune.models import CreateFineTuningJobInput
    from gateway.targets import ResolvedTarget
    from portico.context import Services
    from portico.db.fine_tuning import FineTuningJobRow
    from portico.db.models import File

__all__ = ["ProviderRefused", "ProviderTune", "ProviderUnavailable", "TuneDriver", "TuneJob"]


@dataclass
class ProviderTune:
    """The provider's view of its job at one poll."""

    raw_state: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    estimated_finish: int | None = None
    # {code, message, param} once the provider says the job failed.
    error: dict[str, Any] | None = None
    events: list[EventDraft] = field(default_factory=list)
    checkpoints: list[CheckpointDraft] = field(default_factory=list)
    # {"done", "total", "unit"} when the provider reports how far it is.
    progress: dict[str, Any] | None = None
    # The hyperparameters the provider resolved ("auto" made concrete), in OpenAI's names.
    hyperparameters: dict[str, Any] | None = None


@dataclass
class TuneJob:
    services: Services
    row: FineTuningJobRow
    target: ResolvedTarget
    # None once the provider has the job and the caller deleted the file: only `submit` reads them.
    training: File | None
    validation: File | None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.row.options or {})

    def training_source(self) -> File:
        if self.training is None:
            raise ProviderRefused(f"The training file {self.row.training_file} was deleted before it was sent.")
        return self.training

    async def remember(self, **options: Any) -> None:
        """Keep what the driver learned on the row before acting on it (steps run one at a time per job)."""
        merged = {**self.options, **options}
        if merged != self.row.options:
            await store.save(self.services, self.row, options=merged)

    async def adopt(self, provider_job_id: str, **options: Any) -> None:
        """Record the provider's job id: from here on the job is polled, never created again."""
        await store.save(self.services, self.row, provider_job_id=provider_job_id, options={**self.options, **options})


class TuneDriver(Protocol):
    # Why the checkpoints list is empty on this provider (None: the provider has checkpoints).
    checkpoints_note: str | None

    def prepare(self, request: CreateFineTuningJobInput, target: ResolvedTarget) -> dict[str, Any]:
        """Check the provider parameters at create (raise `InvalidRequest` naming the field); return the options to
        keep on the row (role ARN, buckets, job name, output location)."""
        ...

    async def submit(self, job: TuneJob) -> ProviderTune:
        """Stage the data where the provider reads it and create the provider's job, idempotently: a job this row
        created before (a crash between create and `adopt`) is found and adopted, not created twice."""
        ...

    async def poll(self, job: TuneJob) -> ProviderTune: ...

    async def cancel(self, job: TuneJob) -> None:
        """Ask the provider to stop; `ProviderRefused` when it cannot (the job already ended)."""
        ...


def epoch_seconds(stamp: object, default: int) -> int:
    """An RFC 3339 time as the providers write it (`2025-01-01T10:00:00.123Z`), in Unix seconds."""
    if not isinstance(stamp, str) or not stamp:
        return default
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return default
