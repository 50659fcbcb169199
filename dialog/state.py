"""A conversation's state: what replaying its events gives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dialog.events import BotUttered, Event, UserUttered


@dataclass(frozen=True)
class SlotValue:
    """A slot's value and where it came from (turn, text span, extractor, confidence)."""

    value: Any
    turn: int = 0
    span: str = ""
    extractor: str = ""
    confidence: float = 1.0


@dataclass
class ConversationState:
    """The replayed state every front end can show: slots with provenance, handoff, last sources.

    >>> state = ConversationState.replay("c1", store.events("c1"))
    >>> state.turns, state.handoff
    (3, False)
    """

    conversation_id: str
    turns: int = 0
    slots: dict[str, SlotValue] = field(default_factory=dict)
    handoff: bool = False
    last_sources: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        """Fold one event into the state; unknown event types leave it unchanged."""
        if isinstance(event, UserUttered):
            self.turns += 1
        elif isinstance(event, BotUttered):
            self.last_sources = list(event.sources)

    @classmethod
    def replay(cls, conversation_id: str, events: Iterable[Event]) -> ConversationState:
        state = cls(conversation_id)
        for event in events:
            state.apply(event)
        return state
