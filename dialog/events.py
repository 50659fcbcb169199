"""Conversation events: the append-only facts a conversation's state is replayed from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every event; `type` names it in the store."""

    type: ClassVar[str] = "event"

    def payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserUttered(Event):
    """The user said something."""

    type: ClassVar[str] = "user"
    text: str
    channel: str = "cli"
    delivery_id: str | None = None


@dataclass(frozen=True)
class BotUttered(Event):
    """The assistant answered, citing these chunk ids."""

    type: ClassVar[str] = "bot"
    text: str
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AnswerFailed(Event):
    """Generation broke off; the partial text is kept but never shown as an answer."""

    type: ClassVar[str] = "answer_failed"
    reason: str
    partial: str = ""


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in (UserUttered, BotUttered, AnswerFailed)}


def event_from_row(type_name: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from its stored type name and payload."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown event type {type_name!r}")
    return cls(**payload)
