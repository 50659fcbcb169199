"""The Audit tab: the newest admin actions (who, what, on what, when), as `assistant audit`
lists them."""

from __future__ import annotations

from typing import Any

from ui.admin.desk import AdminDesk

AUDIT_COLUMNS = ["when (UTC)", "who", "action", "on", "detail"]


class AuditAdmin:
    """Handler of the Audit tab.

    >>> rows = AuditAdmin(AdminDesk(runtime)).recent()
    """

    def __init__(self, desk: AdminDesk, limit: int = 100) -> None:
        self.desk = desk
        self.limit = limit

    def recent(self) -> list[list[Any]]:
        """The newest entries first."""
        return [
            [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.target, e.detail]
            for e in self.desk.audit.recent(self.limit)
        ]


__all__ = ["AUDIT_COLUMNS", "AuditAdmin"]
