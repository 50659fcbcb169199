"""The conversation store: append events to a conversation, read them back in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dialog.errors import ConversationNotFound
from dialog.events import Event, event_from_row
from dialog.records import ConversationRow, EventRow


class ConversationStore:
    """Event log per conversation in SQL.

    >>> store = ConversationStore(db.session)
    >>> store.append("c1", [UserUttered("hi")], channel="web")
    >>> store.events("c1")
    [UserUttered(text='hi', channel='cli', delivery_id=None)]
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def append(self, conversation_id: str, events: Sequence[Event], *, channel: str = "cli") -> None:
        """Append events in one transaction, creating the conversation on first use."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            conversation = session.get(ConversationRow, conversation_id)
            if conversation is None:
                conversation = ConversationRow(id=conversation_id, channel=channel, created_at=now, updated_at=now)
                session.add(conversation)
                session.flush()
            conversation.updated_at = now
            last = session.scalar(
                select(func.max(EventRow.seq)).where(EventRow.conversation_id == conversation_id)
            )
            seq = last or 0
            for event in events:
                seq += 1
                session.add(
                    EventRow(
                        conversation_id=conversation_id,
                        seq=seq,
                        type=event.type,
                        payload=event.payload(),
                        created_at=now,
                    )
                )

    def events(self, conversation_id: str, *, last: int | None = None) -> list[Event]:
        """The conversation's events in order; `last` keeps only the newest N."""
        with self._sessions() as session:
            query = select(EventRow).where(EventRow.conversation_id == conversation_id)
            if last is not None:
                query = query.order_by(EventRow.seq.desc()).limit(last)
                rows = list(reversed(session.scalars(query).all()))
            else:
                rows = list(session.scalars(query.order_by(EventRow.seq)).all())
        return [event_from_row(row.type, row.payload) for row in rows]

    def exists(self, conversation_id: str) -> bool:
        with self._sessions() as session:
            return session.get(ConversationRow, conversation_id) is not None

    def require(self, conversation_id: str) -> None:
        """Raise ConversationNotFound for an unknown id."""
        if not self.exists(conversation_id):
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")
