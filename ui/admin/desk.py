"""What every admin tab shares: who the admin is, the channel their actions go through, and the
audit trail that records them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gradio as gr

from ui.access import Principal, Role
from ui.access_audit import AuditLog
from ui.backend import Backend
from ui.channel import Caller, Channel
from ui.runtime import Runtime


def admin_caller(request: gr.Request | None) -> Caller:
    """The logged-in admin as the channel's caller (`admin:<user>`), the actor the audit names."""
    user = getattr(request, "username", None) if request is not None else None
    return Principal(Role.ADMIN, f"admin:{user or 'unknown'}")


@dataclass
class AdminDesk:
    """The runtime the admin area acts on and its audit trail.

    >>> desk = AdminDesk(runtime)
    >>> desk.record(admin_caller(request), "upload", "warranty.md", "1 file, 3 passages")
    """

    runtime: Runtime

    @cached_property
    def audit(self) -> AuditLog:
        """Built on first use, so mounting the page opens no database."""
        return AuditLog(self.runtime.components.database.session)

    @property
    def channel(self) -> Channel:
        return self.runtime.channel

    @property
    def components(self) -> Backend:
        return self.runtime.components

    def record(self, caller: Caller, action: str, target: str = "", detail: str = "") -> None:
        """One admin action in the audit trail, with the admin's login as the actor."""
        self.audit.record(actor=caller, action=action, target=target, detail=detail)


__all__ = ["AdminDesk", "admin_caller"]
