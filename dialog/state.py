"""A conversation's state: what replaying its events gives (from the newest snapshot on)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dialog import events as ev


@dataclass(frozen=True)
class SlotValue:
    """A slot's value and where it came from (turn, text span, extractor, confidence)."""

    value: Any
    turn: int = 0
    span: str = ""
    extractor: str = ""
    confidence: float = 1.0


@dataclass(frozen=True)
class Pending:
    """A yes/no question waiting for the user: run a tool, keep a slot value, hand off."""

    kind: str
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


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
    handoff_reason: str = ""
    handoff_summary: str = ""
    last_sources: list[dict[str, Any]] = field(default_factory=list)
    active_form: str | None = None
    requested_slot: str | None = None
    pending: Pending | None = None
    summary: str = ""
    summary_through_turn: int = 0
    language: str = ""
    last_sentiment: str = ""
    last_urgency: str = ""
    erased: bool = False
    seq: int = 0

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the state; unknown event types leave it unchanged."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def apply_all(self, events: Iterable[ev.Event]) -> ConversationState:
        for event in events:
            self.apply(event)
        return self

    @classmethod
    def replay(cls, conversation_id: str, events: Iterable[ev.Event]) -> ConversationState:
        return cls(conversation_id).apply_all(events)

    def slot(self, name: str) -> Any:
        """The slot's value, or None."""
        found = self.slots.get(name)
        return None if found is None else found.value

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: the snapshot format."""
        data = asdict(self)
        data["slots"] = {k: asdict(v) for k, v in self.slots.items()}
        data["pending"] = asdict(self.pending) if self.pending else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationState:
        data = dict(data)
        slots = {k: SlotValue(**v) for k, v in data.pop("slots", {}).items()}
        pending = data.pop("pending", None)
        known = set(cls.__dataclass_fields__)
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.slots = slots
        state.pending = Pending(**pending) if pending else None
        return state


def _user(state: ConversationState, event: ev.UserUttered) -> None:
    state.turns += 1
    state.last_sentiment, state.last_urgency = event.sentiment, event.urgency


def _bot(state: ConversationState, event: ev.BotUttered) -> None:
    state.last_sources = list(event.sources)


def _slot(state: ConversationState, event: ev.SlotSet) -> None:
    state.slots[event.name] = SlotValue(
        event.value, event.turn, event.span, event.extractor, event.confidence
    )
    if state.requested_slot == event.name:
        state.requested_slot = None


def _slot_cleared(state: ConversationState, event: ev.SlotCleared) -> None:
    state.slots.pop(event.name, None)


def _form_started(state: ConversationState, event: ev.FormStarted) -> None:
    state.active_form, state.requested_slot = event.name, None


def _slot_requested(state: ConversationState, event: ev.SlotRequested) -> None:
    state.requested_slot = event.name


def _form_ended(state: ConversationState, event: ev.FormEnded) -> None:
    state.active_form = state.requested_slot = None


def _confirm(state: ConversationState, event: ev.ConfirmationRequested) -> None:
    state.pending = Pending(event.kind, event.name, dict(event.arguments))


def _resolved(state: ConversationState, event: ev.ConfirmationResolved) -> None:
    state.pending = None


def _handoff(state: ConversationState, event: ev.HandoffStarted) -> None:
    state.handoff, state.handoff_reason, state.handoff_summary = True, event.reason, event.summary
    state.pending = None


def _handed_back(state: ConversationState, event: ev.HandedBack) -> None:
    state.handoff, state.handoff_reason, state.handoff_summary = False, "", ""


def _summary(state: ConversationState, event: ev.SummaryUpdated) -> None:
    state.summary, state.summary_through_turn = event.text, event.through_turn


def _language(state: ConversationState, event: ev.LanguageSet) -> None:
    state.language = event.language


def _restart(state: ConversationState, event: ev.ConversationRestarted) -> None:
    kept = ConversationState(
        state.conversation_id,
        turns=state.turns,
        seq=state.seq,
        handoff=state.handoff,
        handoff_reason=state.handoff_reason,
        handoff_summary=state.handoff_summary,
    )
    state.__dict__.update(kept.__dict__)


def _erased(state: ConversationState, event: ev.ConversationErased) -> None:
    state.__dict__.update(
        ConversationState(state.conversation_id, erased=True, seq=state.seq).__dict__
    )


_HANDLERS: dict[type[ev.Event], Any] = {
    ev.UserUttered: _user,
    ev.BotUttered: _bot,
    ev.SlotSet: _slot,
    ev.SlotCleared: _slot_cleared,
    ev.FormStarted: _form_started,
    ev.SlotRequested: _slot_requested,
    ev.FormEnded: _form_ended,
    ev.ConfirmationRequested: _confirm,
    ev.ConfirmationResolved: _resolved,
    ev.HandoffStarted: _handoff,
    ev.HandedBack: _handed_back,
    ev.SummaryUpdated: _summary,
    ev.LanguageSet: _language,
    ev.ConversationRestarted: _restart,
    ev.ConversationErased: _erased,
}
