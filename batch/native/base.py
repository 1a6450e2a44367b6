"""What a provider's batch API looks like to Portico: one driver per adapter (OpenAI, Bedrock, Vertex), selected by
a dict lookup on the adapter name (`batch.native.registry.DRIVERS`).

A driver is stateless; everything it learns (the provider's job id, staged URIs, provider file ids) goes into the
batch row through `NativeJob.adopt` and `NativeJob.remember`, so any worker, after any restart, can take the next
step. The steps themselves (`batch.native.steps`) decide what to do from the row and the provider's raw state.

A driver reports trouble as one of two errors, and nothing else leaves it:

- `ProviderRefused`: the provider (or its storage) said no for good — a bad role, a missing bucket, an input line
  that cannot be converted. The batch fails with the message (and the offending lines, if any).
- `ProviderUnavailable`: try again later — a 429, a 5xx, a connection that broke. The next poll retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from batch import store
from batch.models import BatchError, CreateBatchInput

if TYPE_CHECKING:
    from batch.native.outputs import OutputSink
    from gateway.targets import ResolvedTarget
    from portico.context import Services
    from portico.db.batches import BatchRow
    from portico.db.models import File


class ProviderRefused(Exception):
    """A permanent refusal: the batch fails with this message and these per-line errors."""

    def __init__(self, message: str, errors: list[BatchError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class ProviderUnavailable(Exception):
    """A transient failure: nothing is decided, the next poll tries again."""


@dataclass
class ProviderJob:
    """The provider's view of its job at one poll."""

    raw_state: str
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    # Why it failed, in the provider's words, and the provider's per-line errors if it gives any (OpenAI does).
    message: str | None = None
    errors: list[BatchError] = field(default_factory=list)


@dataclass(frozen=True)
class StoredLines:
    """One JSONL file of OpenAI output lines, written to Portico's blob store."""

    key: str
    bytes: int
    sha256: str
    lines: int


@dataclass(frozen=True)
class Collected:
    """A finished provider job's results as OpenAI output and error files (None: no line of that kind)."""

    output: StoredLines | None
    errors: StoredLines | None

    @property
    def completed(self) -> int:
        return self.output.lines if self.output else 0

    @property
    def failed(self) -> int:
        return self.errors.lines if self.errors else 0


@dataclass
class NativeJob:
    services: Services
    row: BatchRow
    target: ResolvedTarget
    # None once the provider has the job and the caller deleted the file: only `submit` reads it (`source`).
    input_file: File | None

    @property
    def source(self) -> File:
        if self.input_file is None:
            raise ProviderRefused(f"The batch's input file {self.row.input_file_id} was deleted before it was sent.")
        return self.input_file

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.row.options or {})

    async def remember(self, **options: Any) -> None:
        """Keep what the driver learned on the row, before it acts on it (steps run one at a time per batch)."""
        merged = {**self.options, **options}
        if merged != self.row.options:
            await store.save(self.services, self.row, options=merged)

    async def adopt(self, provider_batch_id: str, **options: Any) -> None:
        """Record the provider's job id: from here on the batch is polled, never created again."""
        await store.save(
            self.services, self.row, provider_batch_id=provider_batch_id, options={**self.options, **options}
        )


class BatchDriver(Protocol):
    # The provider's cap on requests per job (None: no cap Portico knows of); checked at create.
    max_requests: int | None

    def prepare(self, request: CreateBatchInput, target: ResolvedTarget) -> dict[str, Any]:
        """Check the provider parameters at create time (raise `InvalidRequest` naming the field) and return the
        options to keep on the row (role ARN, buckets, model, job name, output location)."""
        ...

    async def submit(self, job: NativeJob) -> ProviderJob:
        """Stage the input where the provider reads it and create the provider's job, idempotently: a job this
        batch created before (a crash between create and `adopt`) is found and adopted, not created twice."""
        ...

    async def poll(self, job: NativeJob) -> ProviderJob: ...

    async def collect(self, job: NativeJob, sink: OutputSink) -> None:
        """Convert the provider's output into OpenAI output and error lines, into `sink` (streamed, never whole in
        memory). The step then accounts for requests the provider left out and stores the files."""
        ...

    async def cancel(self, job: NativeJob) -> None:
        """Ask the provider to stop; `ProviderRefused` when it cannot (the job already ended)."""
        ...
