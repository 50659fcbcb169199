"""One turn's work in progress: the state as it evolves and the events that will record it."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialog.events import Event
from dialog.messages import Message
from dialog.sentiment import Label
from dialog.state import ConversationState


@dataclass
class TurnWork:
    """Events added here are folded into `state` at once, so later steps of the turn see them.

    `state` is this turn's copy: the stored conversation changes only when `events` are appended.
    A step adds what the steps after it must see (a slot just extracted); the rest it returns in
    its Outcome, which the manager adds when the step has decided.
    """

    message: Message
    text: str
    state: ConversationState
    label: Label
    history: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    offer_handoff: bool = False

    @property
    def conversation_id(self) -> str:
        return self.message.conversation_id

    @property
    def turn(self) -> int:
        """This user turn's number (1 for the first message)."""
        return self.state.turns

    def add(self, *events: Event) -> None:
        """Record events of this turn and fold them into its state."""
        for event in events:
            self.events.append(event)
            self.state.apply(event)
