"""A stand-in dialog manager whose sources gain their quotes only when the answer has streamed, as
the real one's do: front ends must show `turn.reply.sources`, not the sources known up front."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

from dialog.events import BotUttered, Event, UserUttered
from dialog.messages import Grounding, Message, Reply, Source
from dialog.state import ConversationState

HOSTILE_QUOTE = (
    "Keep the \x1b]0;pwned-title\x07receipt \x1b]52;c;cHduZWQ=\x07"
    "\x1b[31mfor two years\x1b[0m.\u202e"
)
SOURCES = [
    Source(
        "/docs/warranty.md",
        2,
        0.81,
        "# Blender warranty\n\nThe warranty on blenders lasts two years from delivery.",
        title="Blender warranty",
        kb_version=3,
        quote="Blender warranty\nThe warranty on blenders lasts two years from delivery.",
    ),
    Source(
        "/docs/receipts.md",
        5,
        0.44,
        "# Receipts\n\nKeep the receipt for two years.",
        title="Receipts",
        kb_version=3,
        quote=HOSTILE_QUOTE,
    ),
    Source("/docs/loyalty.md", 7, 0.31, "Loyalty points expire after eighteen months."),
]
ANSWER = "Blenders have a two year warranty from delivery."


class QuotedTurn:
    """Streams `answer` word by word; the quotes arrive with the final reply."""

    def __init__(self, conversation_id: str, answer: str, sources: list[Source]) -> None:
        self.conversation_id = conversation_id
        self.sources = [dataclasses.replace(s, quote="") for s in sources]
        self.handoff = False
        self._answer, self._final = answer, sources
        self._reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        yield from re.findall(r"\S+\s*", self._answer)
        self.sources = self._final
        self._reply = Reply(
            self.conversation_id, self._answer, self._final, grounding=Grounding("passed")
        )

    @property
    def reply(self) -> Reply:
        for _ in self:
            pass
        assert self._reply is not None
        return self._reply


class QuotingAssistant:
    """Answers every message with ANSWER over SOURCES and keeps each conversation's events, the
    answer's source refs with their quotes as the dialog manager stores them."""

    def __init__(self, answer: str = ANSWER, sources: list[Source] | None = None) -> None:
        self.answer = answer
        self.sources = SOURCES if sources is None else sources
        self.events: dict[str, list[Event]] = {}
        self.answer_hooks: list[Callable[[Grounding], None]] = []
        """Called with each answer's grounding check, like the dialog manager's (for /metrics)."""

    def start(self, message: Message) -> QuotedTurn:
        refs = [
            {"chunk_id": s.chunk_id, "source": s.source, "score": s.score}
            | ({"quote": s.quote} if s.quote else {})
            for s in self.sources
        ]
        self.events.setdefault(message.conversation_id, []).extend(
            [UserUttered(message.text), BotUttered(self.answer, refs)]
        )
        for hook in self.answer_hooks:
            hook(Grounding("passed"))
        return QuotedTurn(message.conversation_id, self.answer, self.sources)

    def handle(self, message: Message) -> Reply:
        return self.start(message).reply

    def state(self, conversation_id: str) -> ConversationState:
        return ConversationState.replay(conversation_id, self.history(conversation_id))

    def history(self, conversation_id: str) -> list[Event]:
        return list(self.events.get(conversation_id, []))
