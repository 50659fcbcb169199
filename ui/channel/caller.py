"""Who is asking, and the one hook that decides whether they may: every channel call passes it.

The vocabulary is issue 17's (`ui.access`): a `Principal` (role + subject) is the channel's
`Caller`, and its `Action`s name what the caller wants. `authorize` is where the policy plugs in
(roles, API keys, conversation ownership): the server installs `AccessControl.hook` there
(`Runtime.guard`); a channel built alone (terminal, `assistant ask`, tests) allows everything. A
front end only names its caller (with its conversation token); it never checks access itself.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant_core.errors import AssistantError
from ui.access import Action, Principal, Role

Caller = Principal
"""Who is asking: a role and a stable subject (`key:<id>`, `web`, `web:<user>`, `webhook:<source>`,
`local`)."""

LOCAL = Caller(Role.ADMIN, "local")
"""The person at this machine's terminal (`assistant chat`, `assistant ask`): they own the data
directory already, so they act as an admin."""
ANONYMOUS_API = Caller(Role.CUSTOMER, "anonymous")
"""A REST caller without a key while no key exists at all (`ui.access_http.ANONYMOUS_CUSTOMER`):
the single-user local setup; its conversations are still bound by their tokens."""


def web_caller(user: str | None = None) -> Caller:
    """A browser on the web chat: `web`, or `web:<user>` behind the optional login."""
    return Caller(Role.CUSTOMER, f"web:{user}" if user else "web")


def webhook_caller(source: str) -> Caller:
    """A signed delivery from a helpdesk integration (`generic`, `chatwoot`)."""
    return Caller(Role.WEBHOOK, f"webhook:{source}")


class AccessDenied(AssistantError):
    """The caller may not do this; `status` is what HTTP answers (401, 403, or 404 to hide that a
    conversation exists)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


Authorize = Callable[[Caller, Action, "str | None"], None]
"""`authorize(caller, action, conversation_id)` returns when allowed and raises AccessDenied when
not; `conversation_id` is None for actions on no conversation (UPLOAD, KB_STATUS)."""


def allow_everything(caller: Caller, action: Action, conversation_id: str | None) -> None:
    """The rule of a channel no server guards (the terminal's owner is an admin anyway)."""


__all__ = [
    "ANONYMOUS_API",
    "LOCAL",
    "AccessDenied",
    "Action",
    "Authorize",
    "Caller",
    "Role",
    "allow_everything",
    "web_caller",
    "webhook_caller",
]
