"""A message delivered again (its worker died, or the sender retried) is one turn, never two.

Front ends that take webhooks hand the dialog manager the delivery's id. When the conversation
already holds a user event with that id, the turn is not stored again: an answer stored for it is
returned as it was, and a turn a crash interrupted (no answer after its user event) is resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dialog import events as ev
from dialog.messages import Grounding, Source
from dialog.turn import Turn


@dataclass(frozen=True)
class Delivered:
    """Where the delivery's user event is in the history, and the answer stored after it."""

    index: int
    answer: ev.BotUttered | None

    def turn(self, conversation_id: str, handoff: bool) -> Turn:
        """The stored answer as a finished turn; nothing is stored again."""
        assert self.answer is not None
        said = self.answer
        sources = [
            Source(
                str(ref.get("source", "")),
                int(ref.get("chunk_id", 0)),
                float(ref.get("score", 0.0)),
                "",
                quote=str(ref.get("quote", "")),
            )
            for ref in said.sources
        ]
        check = Grounding(action=str(said.check.get("action", "none")))
        text = iter([said.text] if said.text else [])
        return Turn(conversation_id, sources, text, handoff=handoff, grounding=check)


def delivered_before(history: Sequence[ev.Event], delivery_id: str | None) -> Delivered | None:
    """The earlier turn of this delivery in the recent history, or None when it is new."""
    if not delivery_id:
        return None
    for index in range(len(history) - 1, -1, -1):
        event = history[index]
        if isinstance(event, ev.UserUttered) and event.delivery_id == delivery_id:
            return Delivered(index, _answer_after(history[index + 1 :]))
    return None


def _answer_after(events: Sequence[ev.Event]) -> ev.BotUttered | None:
    for event in events:
        if isinstance(event, ev.UserUttered):
            return None
        if isinstance(event, ev.BotUttered):
            return event
    return None
