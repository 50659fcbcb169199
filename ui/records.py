"""SQL rows the front ends own: webhook deliveries, claimed once each by a unique constraint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.core.db import Base


class DeliveryRow(Base):
    """One webhook delivery; a second row with the same (source, delivery_id) cannot exist."""

    __tablename__ = "ui_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_ui_deliveries_source_delivery"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
