"""Tables for integrations (organisation-level provider credentials), the models and workspaces each one allows,
and providers: a workspace's handle on an integration, which requests select with `x-portkey-provider: @slug`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portico.db.models import Base


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("organisation_id", "slug"),
        Index("ix_integrations_listing", "organisation_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    # NULL for an organisation-level integration; set for one scoped to a single workspace (the spec's
    # "workspace-scoped integrations"), which goes when its workspace does.
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    # The catalogue's canonical provider name (providers.catalogue), e.g. 'openai', 'bedrock'.
    ai_provider_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Fernet token of a JSON object holding the secret fields, under the catalogue's names; never returned.
    sealed_secrets: Mapped[str] = mapped_column(Text)
    # Masked forms of the secrets (`sk-a*******yz`), made when they are sealed so reads never open the box.
    secret_masks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allow_all_models: Mapped[bool] = mapped_column(Boolean, default=True)
    # Access for every workspace without a grant of its own, including workspaces created later.
    global_access: Mapped[bool] = mapped_column(Boolean, default=False)
    global_usage_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    global_rate_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)


class IntegrationModel(Base):
    """A model switched on or off for an integration; models without a row follow `allow_all_models`."""

    __tablename__ = "integration_models"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True)
    slug: Mapped[str] = mapped_column(String(255), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    is_custom: Mapped[bool | None] = mapped_column(Boolean)
    is_finetune: Mapped[bool | None] = mapped_column(Boolean)
    base_model_slug: Mapped[str | None] = mapped_column(String(255))
    pricing_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)


class IntegrationWorkspace(Base):
    """A workspace's grant (or explicit refusal) to use an organisation-level integration, with its limits."""

    __tablename__ = "integration_workspaces"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    usage_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    rate_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)


class Provider(Base):
    __tablename__ = "providers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slug"),
        Index("ix_providers_listing", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # Providers carry no credentials of their own: deleting the integration deletes them.
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    usage_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rate_limits: Mapped[list[Any] | None] = mapped_column(JSON)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)
