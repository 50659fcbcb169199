"""What ui needs from the dialog manager, as a Protocol: ui never depends on the concrete class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from dialog.events import Event
from dialog.messages import Grounding, Message, Reply, Source
from dialog.state import ConversationState


class TurnStream(Protocol):
    """A turn in progress: sources known at once, text as it is iterated, then the final reply."""

    @property
    def conversation_id(self) -> str: ...

    @property
    def sources(self) -> list[Source]: ...

    def __iter__(self) -> Iterator[str]: ...

    @property
    def reply(self) -> Reply: ...


class SlashCommand(Protocol):
    """A registered slash command, as the terminal completes it."""

    @property
    def name(self) -> str: ...

    @property
    def help(self) -> str: ...


class DialogService(Protocol):
    """The dialog manager as every front end uses it (`dialog.manager.Assistant` implements it).

    >>> service: DialogService = components.assistant
    >>> service.handle(Message("Where is my order?", "c1")).answer
    """

    answer_hooks: list[Callable[[Grounding], None]]
    """Called with each answer's grounding check (the channel counts them for /metrics)."""

    @property
    def commands(self) -> Iterable[SlashCommand]: ...

    def start(self, message: Message) -> TurnStream:
        """Take the conversation's lock and start the turn; its answer streams as it is read."""
        ...

    def handle(self, message: Message) -> Reply:
        """Run a whole turn."""
        ...

    def history(self, conversation_id: str) -> list[Event]:
        """The conversation's events, numbered from 1 without gaps (an unknown id has none)."""
        ...

    def state(self, conversation_id: str) -> ConversationState: ...

    def feedback(self, conversation_id: str, event_seq: int | None, positive: bool) -> int:
        """Store a thumbs up/down; raises ConversationNotFound or EventNotFound."""
        ...

    def hand_back(self, conversation_id: str, agent: str = "") -> bool:
        """Give a handed-off conversation back to the bot; False when it was not handed off."""
        ...
