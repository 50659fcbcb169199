"""The conversation store as the dialog manager uses it, apart from the SQL that implements it.

`dialog.store.SqlConversationStore` is the implementation (SQLite or PostgreSQL);
tests/contracts/test_conversation_store.py runs one suite against every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session, sessionmaker

from dialog.events import Event
from dialog.state import ConversationState


@runtime_checkable
class ConversationStore(Protocol):
    """An append-only event log per conversation; its state is what replaying the log gives.

    >>> store.append("c1", [UserUttered("hi")], channel="web")
    1
    >>> store.load_state("c1").turns
    1
    """

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The database the log lives in: tools and per-conversation locks share it."""
        ...

    def append(self, conversation_id: str, events: Sequence[Event], *, channel: str = "cli") -> int:
        """Append events in one transaction; returns the last seq."""
        ...

    def events(
        self, conversation_id: str, *, last: int | None = None, after: int = 0
    ) -> list[Event]:
        """The conversation's events in order."""
        ...

    def numbered_events(
        self, conversation_id: str, *, last: int | None = None, after: int = 0
    ) -> list[tuple[int, Event]]:
        """The events, each with its seq."""
        ...

    def load_state(self, conversation_id: str) -> ConversationState:
        """The state after every event so far."""
        ...

    def load_turn(
        self, conversation_id: str, *, history: int
    ) -> tuple[ConversationState, list[Event]]:
        """The state and the newest `history` events, read together."""
        ...

    def save_snapshot(self, state: ConversationState) -> None:
        """Store the state as of `state.seq`, so later loads replay less."""
        ...

    def erase(self, conversation_id: str) -> int:
        """Delete the conversation's events, leaving an erasure marker; returns the count."""
        ...

    def exists(self, conversation_id: str) -> bool:
        """Whether the conversation has any record."""
        ...

    def require(self, conversation_id: str) -> None:
        """Raise ConversationNotFound for an unknown id."""
        ...
