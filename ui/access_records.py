"""SQL rows of access control: API keys (hashed), conversation owners (token hashed), audit trail.

Import this module wherever tables are registered (next to `ui.records`); migration 0006 creates
the tables, 0010 adds the keys' expiry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant_core.db import Base


class ApiKeyRow(Base):
    """One API key: its public id, role and the SHA-256 digest of the secret, never the secret;
    `expires_at` (UTC, migration 0010) is when it stops working, None for never."""

    __tablename__ = "ui_api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ConversationOwnerRow(Base):
    """Who started a REST or web conversation, and the digest of the token that proves it."""

    __tablename__ = "ui_conversation_owners"

    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(200))
    token_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One admin action: who, what, on what, when."""

    __tablename__ = "ui_audit"
    __table_args__ = (Index("ix_ui_audit_at", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text)
