"""Fine-tuning jobs, their events and checkpoints: the SQL side of issue 5.

A job row is the whole truth about a fine-tune: the sealed route a worker resolves again, what the driver learned
(`options`: staged URIs, provider file ids, the `creating` mark), the provider's raw state beside the mapped status,
and the poll schedule. Events and checkpoints are rows of their own, each with a key unique per job
(`dedupe_key`, `step_number`), so a poll repeated after a crash or a restart inserts nothing twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portico.db.models import Base


class FineTuningJobRow(Base):
    __tablename__ = "fine_tuning_jobs"
    __table_args__ = (
        Index("ix_fine_tuning_jobs_listing", "workspace_id", "created_at", "id"),
        Index("ix_fine_tuning_jobs_active", "status", "next_poll_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    # The key that created it: workers act for it (its organisation, its workspace).
    api_key_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    provider_status: Mapped[str | None] = mapped_column(String(64))
    provider_job_id: Mapped[str | None] = mapped_column(String(512))
    sealed_route: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(255))
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    method: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    suffix: Mapped[str | None] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512))
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    estimated_finish: Mapped[int | None] = mapped_column(BigInteger)
    next_poll_at: Mapped[int | None] = mapped_column(BigInteger)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)


class FineTuningEventRow(Base):
    __tablename__ = "fine_tuning_events"
    __table_args__ = (
        UniqueConstraint("job_id", "dedupe_key"),
        Index("ix_fine_tuning_events_listing", "job_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    # What the event is about, stable across polls: `state:InProgress`, `openai:<provider event id>`, `metrics:final`.
    dedupe_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FineTuningCheckpointRow(Base):
    __tablename__ = "fine_tuning_checkpoints"
    __table_args__ = (
        UniqueConstraint("job_id", "step_number"),
        Index("ix_fine_tuning_checkpoints_listing", "job_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    step_number: Mapped[int] = mapped_column(Integer)
    fine_tuned_model_checkpoint: Mapped[str] = mapped_column(String(512))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
