"""Stored Responses (`store: true`, the default): the response object, the conversation so far as chat messages
(what `previous_response_id` continues from), and this turn's input items (what `/input_items` lists)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portico.db.models import Base


class StoredResponse(Base):
    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_workspace", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ResponseInputItem(Base):
    __tablename__ = "response_input_items"
    __table_args__ = (Index("ix_response_input_items_response", "response_id", "position"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(64))
    item: Mapped[dict[str, Any]] = mapped_column(JSON)
