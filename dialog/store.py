"""The conversation store: append events to a conversation, read them back in order, snapshot
state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from assistant_core.db import autocommit, rowcount
from dialog.errors import ConversationNotFound
from dialog.events import ConversationErased, Event, event_from_row
from dialog.records import ConversationRow, EventRow, SnapshotRow, TurnTicketRow
from dialog.state import ConversationState

SNAPSHOT_EVERY = 50
"""Write a snapshot once this many events have piled up since the last one."""


class SqlConversationStore:
    """Event log per conversation in SQL, with state snapshots so long conversations stay cheap.

    >>> store = SqlConversationStore(db.session)
    >>> store.append("c1", [UserUttered("hi")], channel="web")
    1
    >>> store.events("c1")
    [UserUttered(text='hi', channel='cli', delivery_id=None, sentiment='', urgency='')]
    >>> store.load_state("c1").turns
    1
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
        redact: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._reads = autocommit(sessions)
        """For reads: on PostgreSQL without a transaction around them (every turn reads)."""
        self.snapshot_every = snapshot_every
        self.redact = redact
        """Masks personal data in an event's payload before it is stored (ASSISTANT_REDACT)."""
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
            # Core statements, not the unit of work: a turn appends twice, and each flush costs
            touched = rowcount(
                session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.id == conversation_id)
                    .values(updated_at=now),
                    execution_options={"synchronize_session": False},
                )
            )
            if not touched:
                session.execute(
                    insert(ConversationRow).values(
                        id=conversation_id, channel=channel, created_at=now, updated_at=now
                    )
                )
            seq = self._last_seq(session, conversation_id)
            rows = [
                {
                    "conversation_id": conversation_id,
                    "seq": seq + n,
                    "type": event.type,
                    "payload": self.redact(event.type, event.payload())
                    if self.redact
                    else event.payload(),
                    "created_at": now,
                }
                for n, event in enumerate(events, start=1)
            ]
            if rows:
                session.execute(insert(EventRow), rows)
        return seq + len(rows)

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
        with self._reads() as session:
            return _numbered(_event_rows(session, conversation_id, after=after, last=last))

    def load_state(self, conversation_id: str) -> ConversationState:
        """The newest snapshot plus the events after it; writes a new snapshot when many have piled
        up."""
        return self.load_turn(conversation_id, history=0)[0]

    def load_turn(
        self, conversation_id: str, *, history: int
    ) -> tuple[ConversationState, list[Event]]:
        """The state and the newest `history` events, read together: what every turn starts with.

        One read session, and usually one events query: the state's tail (the events after the
        snapshot) is nearly always inside the history window.
        """
        with self._reads() as session:
            snapshot = session.scalar(
                select(SnapshotRow.state).where(SnapshotRow.conversation_id == conversation_id)
            )
            state = (
                ConversationState.from_json(snapshot)
                if snapshot is not None
                else ConversationState(conversation_id)
            )
            if not history:
                rows = _event_rows(session, conversation_id, after=state.seq)
            else:
                rows = _event_rows(session, conversation_id, last=history)
                if rows and rows[0].seq > state.seq + 1:
                    # more events since the snapshot than the window holds: read those too
                    older = _event_rows(
                        session, conversation_id, after=state.seq, before=rows[0].seq
                    )
                    rows = [*older, *rows]
        numbered = _numbered(rows)
        tail = [(seq, event) for seq, event in numbered if seq > state.seq]
        self.replayed = len(tail)
        for seq, event in tail:
            state.apply(event)
            state.seq = seq
        if len(tail) >= self.snapshot_every:
            self.save_snapshot(state)
        return state, [event for _, event in numbered[-history:]] if history else []

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
        with self._reads() as session:
            return session.get(ConversationRow, conversation_id) is not None

    def require(self, conversation_id: str) -> None:
        """Raise ConversationNotFound for an unknown id."""
        if not self.exists(conversation_id):
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")


def _event_rows(
    session: Session,
    conversation_id: str,
    *,
    after: int = 0,
    before: int | None = None,
    last: int | None = None,
) -> list[Row[tuple[int, str, dict[str, Any]]]]:
    """(seq, type, payload) rows in seq order: those after `after` and before `before`, or the
    newest `last`."""
    query = select(EventRow.seq, EventRow.type, EventRow.payload).where(
        EventRow.conversation_id == conversation_id, EventRow.seq > after
    )
    if before is not None:
        query = query.where(EventRow.seq < before)
    if last is None:
        return list(session.execute(query.order_by(EventRow.seq)).all())
    return list(reversed(session.execute(query.order_by(EventRow.seq.desc()).limit(last)).all()))


def _numbered(rows: Sequence[Row[tuple[int, str, dict[str, Any]]]]) -> list[tuple[int, Event]]:
    return [(row.seq, event_from_row(row.type, row.payload)) for row in rows]


__all__ = [
    "SNAPSHOT_EVERY",
    "SqlConversationStore",
    "TurnTicketRow",
]
