"""Batches, their chunks (gateway-managed execution) and idempotency records: the SQL side of issue-4 jobs.

A batch row is the whole truth about a batch; Redis holds only what a running chunk needs between two writes (line
checkpoints, leases, live counters), and everything there can be rebuilt or re-run from these rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portico.db.models import Base


class BatchRow(Base):
    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_listing", "workspace_id", "created_at", "id"),
        Index("ix_batches_active", "status", "next_poll_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    # The key that created it: workers act for it (its organisation, its workspace).
    api_key_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    # `managed` (Portico sends each line through the gateway) or `native` (the provider's own batch API).
    mode: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    # The provider's own job state, kept beside the mapped one (native batches).
    provider_status: Mapped[str | None] = mapped_column(String(64))
    provider_batch_id: Mapped[str | None] = mapped_column(String(512))
    # The routing inputs (virtual key, config, provider and its key): sealed, since a provider key may be among them.
    sealed_route: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(255))
    # Provider parameters validated at creation (role ARN, buckets, job name, output location) and what the
    # driver recorded while running (staged URIs, provider file ids).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    # When a poller should next look at this batch (native: the provider's job; managed: the reconciler).
    next_poll_at: Mapped[int | None] = mapped_column(BigInteger)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)


class BatchChunk(Base):
    """A slice of a managed batch's input: lines [first_line, first_line + line_count) at bytes [start, end)."""

    __tablename__ = "batch_chunks"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_line: Mapped[int] = mapped_column(Integer)
    line_count: Mapped[int] = mapped_column(Integer)
    start_offset: Mapped[int] = mapped_column(BigInteger)
    end_offset: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class IdempotencyRecord(Base):
    """One `Idempotency-Key` use: the request's fingerprint and, once it succeeded, the answer to replay."""

    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still running.
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
