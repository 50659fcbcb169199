"""SQL rows the front ends own: webhook deliveries, claimed once each by a unique constraint, and
kept with their payload as durable jobs that workers lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant_core.db import Base


class DeliveryRow(Base):
    """One webhook delivery and its job; a second row with the same (source, delivery_id) cannot
    exist."""

    __tablename__ = "ui_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_ui_deliveries_source_delivery"),
        Index("ix_ui_deliveries_status_run_after", "status", "run_after"),
        Index("ix_ui_deliveries_conversation", "conversation_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    """What the job needs to run again after a crash (the message, where to send the answer)."""
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    """The reply once the turn ran, and the sending steps done: a retry re-sends, never
    regenerates."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(120), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
