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
    quote: str = ""
    """The passage's sentence or line that best answers the question, verbatim (empty when the
    answer did not draw on this passage)."""
    url: str = ""
    """Where a customer can open the document (a web page; a file's front-matter `url:`); empty
    when there is no such place (a local file)."""

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 4),
            "text": self.text,
            "kb_version": self.kb_version,
            "quote": self.quote,
            "url": self.url,
        }


@dataclass(frozen=True)
class Grounding:
    """What the grounding check found in one answer and what it did about it.

    `action` is one of: "passed" (every checkable fact is in the passages or the conversation),
    "extractive" (an unsupported fact, a flipped negation or a loop: the answer was replaced by
    quoted passages), "abstained" (nothing relevant: the assistant said so and offered a person),
    "none" (no answer was generated, e.g. a command or a tool).
    """

    action: str = "none"
    facts: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    reason: str = ""
    relevance: dict[str, object] = field(default_factory=dict)
    """The signals the relevance decision was made on (standout, coverage, missing words …)."""

    def as_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "facts": list(self.facts),
            "unsupported": list(self.unsupported),
            "reason": self.reason,
            "relevance": self.relevance,
        }


@dataclass(frozen=True)
class Reply:
    """The assistant's whole answer to one message."""

    conversation_id: str
    answer: str
    sources: list[Source] = field(default_factory=list)
    handoff: bool = False
    grounding: Grounding = field(default_factory=Grounding)

    @property
    def abstained(self) -> bool:
        """The assistant said the documents lack the answer (and offered a person)."""
        return self.grounding.action == "abstained"

    def as_json(self) -> dict[str, object]:
        return {
            "conversation_id": self.conversation_id,
            "answer": self.answer,
            "sources": [s.as_json() for s in self.sources],
        }
