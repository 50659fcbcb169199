"""The data that crosses the boundary between front ends and the dialog manager."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_conversation_id() -> str:
    """A fresh, unguessable conversation id."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Message:
    """One incoming message, whatever front end it came from."""

    text: str
    conversation_id: str = field(default_factory=new_conversation_id)
    channel: str = "cli"
    sender: str = "user"
    delivery_id: str | None = None


@dataclass(frozen=True)
class Source:
    """A passage an answer drew on: the scripting interface's `sources[]` item."""

    source: str
    chunk_id: int
    score: float
    text: str
    title: str = ""
    kb_version: int = 0
    """The knowledge base's version when the passage was retrieved."""

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 4),
            "text": self.text,
            "kb_version": self.kb_version,
        }


@dataclass(frozen=True)
class Reply:
    """The assistant's whole answer to one message."""

    conversation_id: str
    answer: str
    sources: list[Source] = field(default_factory=list)
    handoff: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "conversation_id": self.conversation_id,
            "answer": self.answer,
            "sources": [s.as_json() for s in self.sources],
        }
