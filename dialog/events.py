"""Conversation events: the append-only facts a conversation's state is replayed from.

Each event is a small frozen dataclass; its `type` names it in the store and its fields are its
JSON payload. Commands, forms and tools never mutate state: they return events, and the state is
what folding those events gives (`dialog.state.ConversationState.apply`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every event; `type` names it in the store."""

    type: ClassVar[str] = "event"

    def payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserUttered(Event):
    """The user said something; sentiment and urgency are labelled as it arrives."""

    type: ClassVar[str] = "user"
    text: str
    channel: str = "cli"
    delivery_id: str | None = None
    sentiment: str = ""
    urgency: str = ""


@dataclass(frozen=True)
class BotUttered(Event):
    """The assistant answered, citing these chunk ids."""

    type: ClassVar[str] = "bot"
    text: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    """The grounding check of a generated answer: its facts, the unsupported ones, the action."""


@dataclass(frozen=True)
class AnswerFailed(Event):
    """Generation broke off; the partial text is kept but never shown as an answer."""

    type: ClassVar[str] = "answer_failed"
    reason: str
    partial: str = ""


@dataclass(frozen=True)
class CommandRun(Event):
    """A slash command was dispatched with these validated arguments."""

    type: ClassVar[str] = "command"
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotSet(Event):
    """A slot got a value, with its provenance; a later SlotSet of the same slot replaces it."""

    type: ClassVar[str] = "slot"
    name: str
    value: Any
    turn: int = 0
    span: str = ""
    extractor: str = ""
    confidence: float = 1.0


@dataclass(frozen=True)
class SlotCleared(Event):
    """A slot was emptied (the user rejected the value, or a form was cancelled)."""

    type: ClassVar[str] = "slot_cleared"
    name: str


@dataclass(frozen=True)
class FormStarted(Event):
    """A form (or a tool waiting for its arguments) became active; `slot` is the one asked for."""

    type: ClassVar[str] = "form_started"
    name: str


@dataclass(frozen=True)
class SlotRequested(Event):
    """The assistant asked the user for this slot."""

    type: ClassVar[str] = "slot_requested"
    name: str


@dataclass(frozen=True)
class FormEnded(Event):
    """The active form finished: `completed`, `cancelled` or `failed`."""

    type: ClassVar[str] = "form_ended"
    name: str
    outcome: str = "completed"


@dataclass(frozen=True)
class ConfirmationRequested(Event):
    """The assistant asked a yes/no question; `kind` is tool, slot or handoff."""

    type: ClassVar[str] = "confirm_requested"
    kind: str
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmationResolved(Event):
    """The user answered the pending yes/no question."""

    type: ClassVar[str] = "confirm_resolved"
    accepted: bool


@dataclass(frozen=True)
class ToolCalled(Event):
    """A registered tool was run with these validated arguments."""

    type: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    chosen_by: str = ""


@dataclass(frozen=True)
class ToolResult(Event):
    """What a tool returned (or why it failed)."""

    type: ClassVar[str] = "tool_result"
    call_id: str
    name: str
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class ToolRejected(Event):
    """The model asked for a tool that is not registered, or with arguments that do not validate."""

    type: ClassVar[str] = "tool_rejected"
    name: str
    reason: str


@dataclass(frozen=True)
class HandoffStarted(Event):
    """The conversation moved to a human; the bot stays silent until it is handed back."""

    type: ClassVar[str] = "handoff"
    reason: str
    summary: str = ""


@dataclass(frozen=True)
class HandedBack(Event):
    """A human agent handed the conversation back to the bot."""

    type: ClassVar[str] = "handed_back"
    agent: str = ""


@dataclass(frozen=True)
class FeedbackGiven(Event):
    """Thumbs up or down on an answer (`target_seq` None: the conversation as a whole)."""

    type: ClassVar[str] = "feedback"
    positive: bool
    target_seq: int | None = None


@dataclass(frozen=True)
class SummaryUpdated(Event):
    """Turns up to `through_turn` are summarised; prompts use this instead of those turns."""

    type: ClassVar[str] = "summary"
    text: str
    through_turn: int = 0


@dataclass(frozen=True)
class LanguageSet(Event):
    """Answers from now on are in this language."""

    type: ClassVar[str] = "language"
    language: str


@dataclass(frozen=True)
class ConversationRestarted(Event):
    """`/reset`: slots, forms and pending questions are cleared; the log itself is kept."""

    type: ClassVar[str] = "restart"


@dataclass(frozen=True)
class ConversationErased(Event):
    """`/forget`: every earlier event and everything derived from them was deleted."""

    type: ClassVar[str] = "erased"
    erased_events: int = 0


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        UserUttered,
        BotUttered,
        AnswerFailed,
        CommandRun,
        SlotSet,
        SlotCleared,
        FormStarted,
        SlotRequested,
        FormEnded,
        ConfirmationRequested,
        ConfirmationResolved,
        ToolCalled,
        ToolResult,
        ToolRejected,
        HandoffStarted,
        HandedBack,
        FeedbackGiven,
        SummaryUpdated,
        LanguageSet,
        ConversationRestarted,
        ConversationErased,
    )
}


def event_from_row(type_name: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from its stored type name and payload (unknown keys from newer code are
    dropped)."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown event type {type_name!r}")
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in payload.items() if k in known})
