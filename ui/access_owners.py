"""Conversation ownership: a REST or web conversation is bound to whoever started it, by an
unguessable token returned at creation (only its digest is stored) and required afterwards.

>>> owners = OwnershipStore(db.session)
>>> token = owners.bind("api:3f2a9c01d4e5:order-7", "api", customer)
>>> owners.relation("api:3f2a9c01d4e5:order-7", customer, token)
<Relation.OWN: 'own'>
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from assistant_core.db import autocommit
from dialog.records import ConversationRow
from ui.access import Principal, Relation, is_webhook_channel
from ui.access_records import ConversationOwnerRow

TOKEN_HEADER = "X-Conversation-Token"
"""The request header that carries a conversation's token (and the response header that returns
it at creation)."""


class AlreadyBound(Exception):
    """The conversation already has an owner; binding it again would hand it to someone else."""


@dataclass(frozen=True)
class Owner:
    """Who a conversation is bound to (the token's digest stays in the database)."""

    conversation_id: str
    channel: str
    owner: str
    created_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class OwnershipStore:
    """Bind conversations to their owners and tell what a conversation is to a caller."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = autocommit(sessions)
        """For reads: on PostgreSQL without a transaction around them (every turn asks)."""

    def bind(self, conversation_id: str, channel: str, owner: Principal) -> str:
        """Bind a new conversation to `owner`; returns its token (shown once). Raises
        AlreadyBound if someone holds it already, also when two processes race."""
        token = secrets.token_urlsafe(32)
        row = ConversationOwnerRow(
            conversation_id=conversation_id,
            channel=channel,
            owner=owner.subject,
            token_digest=_digest(token),
            created_at=datetime.now(UTC),
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as err:
            raise AlreadyBound(conversation_id) from err
        return token

    def owner(self, conversation_id: str) -> Owner | None:
        """The binding of a conversation, or None for one never bound (webhook, terminal)."""
        with self._reads() as session:
            row = session.get(ConversationOwnerRow, conversation_id)
            if row is None:
                return None
            return Owner(row.conversation_id, row.channel, row.owner, row.created_at)

    def relation(self, conversation_id: str, caller: Principal, token: str | None) -> Relation:
        """OWN only for the bound owner showing the right token; a bound id whose conversation
        was erased stays the owner's (nobody else can take it over). One statement: every turn
        asks."""
        binding = ConversationOwnerRow.conversation_id == conversation_id
        query = select(
            select(ConversationOwnerRow.owner).where(binding).scalar_subquery(),
            select(ConversationOwnerRow.token_digest).where(binding).scalar_subquery(),
            select(ConversationRow.channel)
            .where(ConversationRow.id == conversation_id)
            .scalar_subquery(),
        )
        with self._reads() as session:
            owner, digest, channel = session.execute(query).one()
        if owner is not None:
            return _bound_relation(owner, digest, caller, token)
        if channel is None:
            return Relation.ABSENT
        return Relation.WEBHOOK if is_webhook_channel(channel) else Relation.OTHER


def _bound_relation(owner: str, digest: str, caller: Principal, token: str | None) -> Relation:
    same_owner = hmac.compare_digest(owner.encode(), caller.subject.encode())
    right_token = token is not None and hmac.compare_digest(digest, _digest(token))
    return Relation.OWN if same_owner and right_token else Relation.OTHER


__all__ = ["TOKEN_HEADER", "AlreadyBound", "Owner", "OwnershipStore"]
