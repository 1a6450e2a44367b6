"""Tables for stored provider credentials (virtual keys) and routing configs with their versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portico.db.models import Base


class VirtualKey(Base):
    __tablename__ = "virtual_keys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slug"),
        Index("ix_virtual_keys_listing", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    slug: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Fernet token of a JSON object holding the secret fields (see providers.catalogue); never returned.
    sealed_secrets: Mapped[str] = mapped_column(Text)
    model_config_: Mapped[dict[str, Any]] = mapped_column("model_config", JSON, default=dict)
    usage_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rate_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)


class RoutingConfig(Base):
    __tablename__ = "configs"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    slug: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    is_default: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    current_version_id: Mapped[str] = mapped_column(String(64))
    owner_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)


class RoutingConfigVersion(Base):
    __tablename__ = "config_versions"
    __table_args__ = (Index("ix_config_versions_config", "config_id", "created_at"),)

    version_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config_id: Mapped[str] = mapped_column(ForeignKey("configs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
