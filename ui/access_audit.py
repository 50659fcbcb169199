"""The audit trail: every admin action (upload, removal, rebuild, hand back, key changes,
purges) with who, what, on what and when, stored in the database and listed by `assistant audit`.

>>> audit = AuditLog(db.session)
>>> audit.record("key:3f2a9c01d4e5", "upload", "warranty.md")
>>> audit.recent(1)[0].action
'upload'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from assistant_core.db import stored_utc
from ui.access import Principal
from ui.access_records import AuditRow


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, the time in ISO 8601."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


class AuditLog:
    """Append and list audit entries; rows are only ever added."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self, actor: Principal | str, action: str, target: str = "", detail: str = ""
    ) -> None:
        """Store one action now; `actor` is a caller or its subject (`key:<id>`, `cli:<user>`)."""
        who = actor.subject if isinstance(actor, Principal) else actor
        row = AuditRow(
            at=datetime.now(UTC),
            actor=who[:200],
            action=str(action)[:64],
            target=target[:500],
            detail=detail,
        )
        with self._sessions.begin() as session:
            session.add(row)

    def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The newest `limit` entries, newest first."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        with self._sessions() as session:
            return [
                AuditEntry(r.id, stored_utc(r.at), r.actor, r.action, r.target, r.detail)
                for r in session.scalars(query)
            ]


__all__ = ["AuditEntry", "AuditLog"]
