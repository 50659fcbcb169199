"""The conversation store: append events to a conversation, read them back in order, snapshot
state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialog.errors import ConversationNotFound
from dialog.events import ConversationErased, Event, event_from_row
from dialog.records import ConversationRow, EventRow, SnapshotRow, TurnTicketRow
from dialog.state import ConversationState

SNAPSHOT_EVERY = 50
"""Write a snapshot once this many events have piled up since the last one."""


class ConversationStore:
    """Event log per conversation in SQL, with state snapshots so long conversations stay cheap.

    >>> store = ConversationStore(db.session)
    >>> store.append("c1", [UserUttered("hi")], channel="web")
    1
    >>> store.events("c1")
    [UserUttered(text='hi', channel='cli', delivery_id=None, sentiment='', urgency='')]
    >>> store.load_state("c1").turns
    1
    """

    def __init__(
        self, sessions: sessionmaker[Session], *, snapshot_every: int = SNAPSHOT_EVERY
    ) -> None:
        self._sessions = sessions
        self.snapshot_every = snapshot_every
        self.replayed = 0
        """Events replayed by the last `load_state` (tests check that snapshots bound it)."""

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def append(self, conversation_id: str, events: Sequence[Event], *, channel: str = "cli") -> int:
        """Append events in one transaction, creating the conversation on first use; returns the
        last seq."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            conversation = session.get(ConversationRow, conversation_id)
            if conversation is None:
                conversation = ConversationRow(
                    id=conversation_id, channel=channel, created_at=now, updated_at=now
                )
                session.add(conversation)
                session.flush()
            conversation.updated_at = now
            seq = self._last_seq(session, conversation_id)
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
        return seq

    @staticmethod
    def _last_seq(session: Session, conversation_id: str) -> int:
        last = session.scalar(
            select(func.max(EventRow.seq)).where(EventRow.conversation_id == conversation_id)
        )
        return last or 0

    def events(
        self, conversation_id: str, *, last: int | None = None, after: int = 0
    ) -> list[Event]:
        """The conversation's events in order; `last` keeps only the newest N, `after` those past a
        seq."""
        return [event for _, event in self.numbered_events(conversation_id, last=last, after=after)]

    def numbered_events(
        self, conversation_id: str, *, last: int | None = None, after: int = 0
    ) -> list[tuple[int, Event]]:
        """Like `events`, each with its seq (what feedback refers to)."""
        with self._sessions() as session:
            query = select(EventRow).where(
                EventRow.conversation_id == conversation_id, EventRow.seq > after
            )
            if last is not None:
                query = query.order_by(EventRow.seq.desc()).limit(last)
                rows = list(reversed(session.scalars(query).all()))
            else:
                rows = list(session.scalars(query.order_by(EventRow.seq)).all())
        return [(row.seq, event_from_row(row.type, row.payload)) for row in rows]

    def load_state(self, conversation_id: str) -> ConversationState:
        """The newest snapshot plus the events after it; writes a new snapshot when many have piled
        up."""
        with self._sessions() as session:
            snapshot = session.get(SnapshotRow, conversation_id)
            state = (
                ConversationState.from_json(snapshot.state)
                if snapshot
                else ConversationState(conversation_id)
            )
        tail = self.numbered_events(conversation_id, after=state.seq)
        self.replayed = len(tail)
        for seq, event in tail:
            state.apply(event)
            state.seq = seq
        if len(tail) >= self.snapshot_every:
            self.save_snapshot(state)
        return state

    def save_snapshot(self, state: ConversationState) -> None:
        """Store the state as of `state.seq` (replacing an older snapshot)."""
        now = datetime.now(UTC)
        try:
            with self._sessions.begin() as session:
                if session.get(ConversationRow, state.conversation_id) is None:
                    return
                if self._last_seq(session, state.conversation_id) < state.seq:
                    # erased meanwhile: stale state
                    return
                row = session.get(SnapshotRow, state.conversation_id)
                if row is None:
                    session.add(
                        SnapshotRow(
                            conversation_id=state.conversation_id,
                            seq=state.seq,
                            state=state.to_json(),
                            created_at=now,
                        )
                    )
                elif row.seq < state.seq:
                    row.seq, row.state, row.created_at = state.seq, state.to_json(), now
        except IntegrityError:  # a concurrent reader wrote the same snapshot first
            return

    def erase(self, conversation_id: str) -> int:
        """Delete every event and snapshot of the conversation, leaving one `erased` marker; returns
        the count."""
        with self._sessions.begin() as session:
            count = (
                session.scalar(
                    select(func.count())
                    .select_from(EventRow)
                    .where(EventRow.conversation_id == conversation_id)
                )
                or 0
            )
            session.execute(
                delete(SnapshotRow).where(SnapshotRow.conversation_id == conversation_id)
            )
            session.execute(delete(EventRow).where(EventRow.conversation_id == conversation_id))
        self.append(conversation_id, [ConversationErased(count)])
        return count

    def exists(self, conversation_id: str) -> bool:
        with self._sessions() as session:
            return session.get(ConversationRow, conversation_id) is not None

    def require(self, conversation_id: str) -> None:
        """Raise ConversationNotFound for an unknown id."""
        if not self.exists(conversation_id):
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")


__all__ = ["ConversationStore", "SNAPSHOT_EVERY", "TurnTicketRow"]
