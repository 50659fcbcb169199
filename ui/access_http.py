"""Access control over HTTP: the caller from `Authorization: Bearer <key>`, and one call that
answers 401/403/404 from the policy, so routes never hold an `if` of their own.

>>> access = install_access(app, db.session, handed_off=lambda cid: manager.state(cid).handoff)
>>> @router.get("/conversations/{cid}")
... async def read(cid: str, caller: Principal = Depends(caller_of), token: str | None = ...):
...     await access.authorize(caller, Action.READ, cid, token)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from ui.access import (
    ANONYMOUS,
    STAFF_ACTIONS,
    Action,
    Decision,
    Principal,
    Relation,
    Role,
    Target,
    decide,
    new_conversation_id,
    scoped_conversation_id,
)
from ui.access_audit import AuditLog
from ui.access_keys import KeyStore
from ui.access_owners import TOKEN_HEADER, AlreadyBound, OwnershipStore

ANONYMOUS_CUSTOMER = Principal(Role.CUSTOMER, "anonymous")
"""A REST caller without a key while no key exists at all (loopback, or the explicit opt-out)."""


@dataclass(frozen=True)
class Opening:
    """The outcome of `AccessControl.open`: the conversation id to use, whether the write may go
    ahead, and the new conversation's token (None unless this call created it)."""

    conversation_id: str
    decision: Decision
    token: str | None = None


class AccessControl:
    """The stores one server uses and the checks built on them; every method reads the database,
    so all worker processes agree at once."""

    def __init__(
        self, sessions: sessionmaker[Session], *, handed_off: Callable[[str], bool] | None = None
    ) -> None:
        self.keys = KeyStore(sessions)
        self.owners = OwnershipStore(sessions)
        self.audit = AuditLog(sessions)
        self._handed_off = handed_off or (lambda _cid: False)

    def caller(self, authorization: str | None) -> Principal:
        """The caller an Authorization header makes; 401 for a wrong, revoked or expired key."""
        if not authorization:
            return ANONYMOUS if self.keys.any_active() else ANONYMOUS_CUSTOMER
        scheme, _, secret = authorization.partition(" ")
        key = self.keys.authenticate(secret.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise unauthenticated("the API key is unknown, revoked or expired")
        return key.principal

    def target(self, caller: Principal, conversation_id: str, token: str | None) -> Target:
        """What the conversation is to the caller; asks whether it is handed off only when the
        answer can matter (a staff caller, someone else's conversation)."""
        relation = self.owners.relation(conversation_id, caller, token or caller.token)
        staff = caller.role in {Role.AGENT, Role.ADMIN}
        needs_handoff = staff and relation is Relation.OTHER
        return Target(relation, self._handed_off(conversation_id) if needs_handoff else False)

    def decide(
        self,
        caller: Principal,
        action: Action,
        conversation_id: str | None = None,
        token: str | None = None,
    ) -> Decision:
        """The policy's answer for this caller, action and conversation (blocking: database)."""
        if caller.role is None:
            return Decision.UNAUTHENTICATED
        target = self.target(caller, conversation_id, token) if conversation_id else None
        return decide(caller.role, action, target)

    def open(
        self, caller: Principal, channel: str, client_id: str | None, action: Action = Action.SEND
    ) -> Opening:
        """Where a REST or web write goes: the id scoped to the caller (fresh when the client named
        none), the policy's decision, and a token when this call created the conversation's
        binding (return it to the client once; later requests must show it). An agent or admin
        naming an existing conversation gets that very id (the policy says what staff may do
        there); customers' ids are always namespaced. Blocking: database.

        >>> opening = access.open(caller, "api", body.conversation_id)
        >>> caller = caller.with_token(opening.token or caller.token)  # then the turn
        """
        if caller.role is None:
            return Opening("", Decision.UNAUTHENTICATED)
        if client_id and caller.role in STAFF_ACTIONS:
            named = self.target(caller, client_id, caller.token)
            if named.relation is not Relation.ABSENT:  # staff name others' conversations as is
                return Opening(client_id, decide(caller.role, action, named))
        cid = scoped_conversation_id(channel, caller, client_id) if client_id else ""
        cid = cid or new_conversation_id(channel, caller)
        target = self.target(caller, cid, caller.token)
        decision = decide(caller.role, action, target)
        if not decision.allowed or target.relation is not Relation.ABSENT:
            return Opening(cid, decision)
        try:
            return Opening(cid, decision, self.owners.bind(cid, channel, caller))
        except AlreadyBound:  # another request named the same id a moment ago
            return Opening(cid, decide(caller.role, action, self.target(caller, cid, None)))

    def hook(
        self, error: Callable[[str, int], Exception]
    ) -> Callable[[Principal, Action, str | None], None]:
        """The channel adapter's `authorize(caller, action, conversation_id)`: the policy's
        refusal raised as `error(message, status)`; the token travels on the caller
        (`caller.with_token(...)`). Blocking (database): call it off the event loop."""

        def authorize(caller: Principal, action: Action, conversation_id: str | None) -> None:
            decision = self.decide(caller, action, conversation_id)
            if not decision.allowed:
                raise error(describe(decision, caller, action, conversation_id), int(decision))

        return authorize

    async def authorize(
        self,
        caller: Principal,
        action: Action,
        conversation_id: str | None = None,
        token: str | None = None,
    ) -> None:
        """Raise the HTTP error the policy gives, or return when allowed."""
        decision = await anyio.to_thread.run_sync(
            self.decide, caller, action, conversation_id, token
        )
        raise_for(decision, caller, action, conversation_id)


def raise_for(
    decision: Decision, caller: Principal, action: Action, conversation_id: str | None = None
) -> None:
    """The HTTPException for a refusal, worded so it reveals nothing a caller may not know."""
    if decision is Decision.UNAUTHENTICATED:
        raise unauthenticated("an API key is required")
    if not decision.allowed:
        raise HTTPException(int(decision), describe(decision, caller, action, conversation_id))


def describe(
    decision: Decision, caller: Principal, action: Action, conversation_id: str | None
) -> str:
    """The refusal's message: a 404 reads exactly like a conversation that does not exist."""
    if decision is Decision.UNAUTHENTICATED:
        return "an API key is required: send Authorization: Bearer <key>"
    if decision is Decision.NOT_FOUND:
        return f"no conversation with id {conversation_id!r}"
    role = caller.role.value if caller.role else "none"
    return f"the role {role} may not {action.value.replace('_', ' ')}"


def unauthenticated(why: str) -> HTTPException:
    """401 with the header that tells clients how to authenticate."""
    return HTTPException(
        401, f"{why}: send Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"}
    )


def install_access(
    app: FastAPI,
    sessions: sessionmaker[Session],
    *,
    handed_off: Callable[[str], bool] | None = None,
) -> AccessControl:
    """One AccessControl on `app.state.access`, where `caller_of` finds it."""
    access = AccessControl(sessions, handed_off=handed_off)
    app.state.access = access
    return access


def access_of(request: Request) -> AccessControl:
    """The app's AccessControl (installed by `install_access`)."""
    access: AccessControl = request.app.state.access  # Starlette's State is untyped
    return access


async def caller_of(request: Request) -> Principal:
    """FastAPI dependency: the caller of this request, from its bearer key (401 for a bad one)."""
    header = request.headers.get("authorization")
    return await anyio.to_thread.run_sync(access_of(request).caller, header)


def token_of(request: Request) -> str | None:
    """FastAPI dependency: the conversation token the request carries, if any."""
    return request.headers.get(TOKEN_HEADER)


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency factory for routers that only some roles reach:
    `Depends(require(Role.ADMIN))`."""

    async def dependency(request: Request) -> Principal:
        caller = await caller_of(request)
        if caller.role is None:
            raise unauthenticated("an API key is required")
        if caller.role not in roles:
            raise HTTPException(403, f"the role {caller.role.value} may not use this endpoint")
        return caller

    return dependency


__all__ = [
    "ANONYMOUS_CUSTOMER",
    "AccessControl",
    "Opening",
    "access_of",
    "caller_of",
    "describe",
    "install_access",
    "raise_for",
    "require",
    "token_of",
    "unauthenticated",
]
