"""Who may do what: roles, actions and one pure policy function every front end asks.

The policy is a table, not code spread over handlers: `decide(role, action, target)` answers
200 / 401 / 403 / 404 from the caller's role, the action, and what the conversation is to the
caller (its own, another's, a webhook's, not there yet). A customer asking about anyone else's
conversation gets 404, the same answer as for an id that does not exist, so ids cannot be probed.

>>> decide(Role.CUSTOMER, Action.READ, Target(Relation.OTHER))
<Decision.NOT_FOUND: 404>
>>> decide(Role.ADMIN, Action.UPLOAD)
<Decision.ALLOW: 200>
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum

from assistant_core.errors import ConfigError


class Role(StrEnum):
    """What a caller is; an unauthenticated caller has no role (`None`)."""

    CUSTOMER = "customer"
    AGENT = "agent"
    ADMIN = "admin"
    WEBHOOK = "webhook"


class Action(StrEnum):
    """Every operation of the REST API, the web pages and the webhooks, named once."""

    START = "start"  # a new conversation (no id, or a client-chosen id not used yet)
    SEND = "send"  # a message into an existing conversation, whole answer
    STREAM = "stream"  # the same, streamed
    COMMAND = "command"  # a slash command such as /forget or /reset
    READ = "read"  # transcript and state; the web page's "Resume"
    EXPORT = "export"
    FEEDBACK = "feedback"
    HAND_BACK = "hand_back"  # end a handoff: the assistant answers again
    UPLOAD = "upload"  # documents into the knowledge base
    REMOVE_DOCUMENTS = "remove_documents"
    KB_STATUS = "kb_status"
    REBUILD = "rebuild"
    KEYS = "keys"  # create, list, revoke API keys
    AUDIT = "audit"  # read the audit trail


CONVERSATION_ACTIONS = frozenset(
    {
        Action.START,
        Action.SEND,
        Action.STREAM,
        Action.COMMAND,
        Action.READ,
        Action.EXPORT,
        Action.FEEDBACK,
        Action.HAND_BACK,
    }
)
"""Actions on one conversation: they need a `Target`."""
WRITES = frozenset({Action.START, Action.SEND, Action.STREAM, Action.COMMAND})
"""Actions that add a turn to a conversation (and create it when it is not there yet)."""
ADMIN_ONLY = frozenset(
    {Action.UPLOAD, Action.REMOVE_DOCUMENTS, Action.REBUILD, Action.KEYS, Action.AUDIT}
)
AUDITED = ADMIN_ONLY | {Action.HAND_BACK}
"""Actions the audit trail records (plus an admin's commands in another's conversation)."""
WEBHOOK_CHANNELS = frozenset({"webhook", "chatwoot"})
"""Channels whose conversations belong to a helpdesk integration, not to a browser or key."""


class Relation(StrEnum):
    """What the conversation is to the caller, as the ownership store found it."""

    ABSENT = "absent"  # no conversation with that id (yet)
    OWN = "own"  # bound to this caller, and the caller showed its conversation token
    OTHER = "other"  # anyone else's (or the token is missing or wrong), or bound to no one
    WEBHOOK = "webhook"  # came in through a webhook channel


class Decision(IntEnum):
    """The answer, as the HTTP status a route returns for it."""

    ALLOW = 200
    UNAUTHENTICATED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404

    @property
    def allowed(self) -> bool:
        """True only for ALLOW, so `if decision.allowed` reads as the check it is."""
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Target:
    """The conversation an action is about; `handed_off` lets agents in."""

    relation: Relation
    handed_off: bool = False


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller: a role and who it is, for ownership and the audit.

    `subject` is stable per caller: `key:<id>` for an API key, `web` for an anonymous browser,
    `web:<user>` for the customer login, `admin:<user>` for the admin login, `webhook:<source>`.

    >>> Principal(Role.CUSTOMER, "key:3f2a9c01d4e5").key_id
    '3f2a9c01d4e5'
    """

    role: Role | None
    subject: str = "anonymous"
    token: str | None = field(default=None, repr=False, compare=False)
    """The conversation token this request showed (header `X-Conversation-Token`); never logged."""

    def with_token(self, token: str | None) -> Principal:
        """The same caller carrying a request's conversation token, for the ownership check."""
        return replace(self, token=token)

    @property
    def key_id(self) -> str | None:
        """The API key's id when the caller came with one."""
        kind, _, rest = self.subject.partition(":")
        return rest if kind == "key" and rest else None

    @property
    def authenticated(self) -> bool:
        """Anyone with a role; anonymous callers get 401 from the policy."""
        return self.role is not None


ANONYMOUS = Principal(None)


def decide(role: Role | None, action: Action, target: Target | None = None) -> Decision:
    """The policy: one answer for every (role, action, relation, handoff); pure, so a table test
    covers it."""
    if role is None:
        return Decision.UNAUTHENTICATED
    if action in CONVERSATION_ACTIONS:
        return _conversation(role, action, target or Target(Relation.ABSENT))
    if role is Role.ADMIN:
        return Decision.ALLOW
    if action is Action.KB_STATUS and role is Role.AGENT:
        return Decision.ALLOW
    return Decision.FORBIDDEN


STAFF_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.AGENT: frozenset({Action.READ, Action.EXPORT, Action.HAND_BACK}),
    Role.ADMIN: frozenset({Action.READ, Action.EXPORT, Action.HAND_BACK, Action.COMMAND}),
}
"""What staff may do in a conversation that is not theirs: never write as the customer, never
rate the customer's answers; an admin may purge (/forget) on the customer's behalf."""


def _conversation(role: Role, action: Action, target: Target) -> Decision:
    relation = target.relation
    if relation is Relation.ABSENT:
        return Decision.ALLOW if action in WRITES else Decision.NOT_FOUND
    if action is Action.START:
        action = Action.SEND  # a client-chosen id already in use: a message into it
    if role is Role.WEBHOOK:  # a signed helpdesk also relays its agents' hand backs
        allowed = relation in {Relation.WEBHOOK, Relation.OWN} and action in WRITES
        relayed = relation is Relation.WEBHOOK and action is Action.HAND_BACK
        return Decision.ALLOW if allowed or relayed else Decision.FORBIDDEN
    if role is Role.CUSTOMER:
        if relation is not Relation.OWN:
            return Decision.NOT_FOUND  # another's and absent look the same
        return Decision.FORBIDDEN if action is Action.HAND_BACK else Decision.ALLOW
    if relation is Relation.OWN:
        return Decision.ALLOW
    reachable = role is Role.ADMIN or relation is Relation.WEBHOOK or target.handed_off
    return Decision.ALLOW if reachable and action in STAFF_ACTIONS[role] else Decision.FORBIDDEN


def is_webhook_channel(channel: str) -> bool:
    """A conversation from a helpdesk integration, reachable through REST/web by staff only."""
    return channel in WEBHOOK_CHANNELS


def scoped_conversation_id(channel: str, principal: Principal, client_id: str) -> str:
    """A client-chosen id inside the caller's namespace (`api:<key id>:<id>`), at most 64
    characters, so no client can name another channel's or another key's conversation; an id
    already in the caller's namespace (as returned to it) stays as it is.

    >>> scoped_conversation_id("api", Principal(Role.CUSTOMER, "key:3f2a9c01d4e5"), "order-7")
    'api:3f2a9c01d4e5:order-7'
    """
    owner = principal.key_id or principal.subject.replace(":", ".")[:24] or "anonymous"
    prefix = f"{channel}:{owner}:"
    if client_id.startswith(prefix) and len(client_id) <= 64:
        return client_id
    scoped = prefix + client_id
    if len(scoped) <= 64:
        return scoped
    return prefix + "h." + hashlib.sha256(client_id.encode()).hexdigest()[: 62 - len(prefix)]


def new_conversation_id(channel: str, principal: Principal) -> str:
    """A fresh, unguessable id in the caller's namespace, for a conversation the client did not
    name."""
    return scoped_conversation_id(channel, principal, secrets.token_hex(16))


def parse_logins(value: str, setting: str) -> list[tuple[str, str]]:
    """`user:password[,user2:password2]` into pairs; a malformed value names its setting."""
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"{setting}: expected user:password[,user:password…]")
        pairs.append((user, password))
    return pairs


def check_login(pairs: list[tuple[str, str]], user: str, password: str) -> bool:
    """Constant-time comparison of a login against every configured pair."""
    found = False
    for known_user, known_password in pairs:
        same_user = hmac.compare_digest(known_user.encode(), user.encode())
        same_password = hmac.compare_digest(known_password.encode(), password.encode())
        found |= same_user and same_password
    return found


__all__ = [
    "ADMIN_ONLY",
    "ANONYMOUS",
    "AUDITED",
    "CONVERSATION_ACTIONS",
    "STAFF_ACTIONS",
    "WRITES",
    "Action",
    "Decision",
    "Principal",
    "Relation",
    "Role",
    "Target",
    "check_login",
    "decide",
    "is_webhook_channel",
    "new_conversation_id",
    "parse_logins",
    "scoped_conversation_id",
]
