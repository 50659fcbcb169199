"""What the front ends need from the application. The composition (`assistant.wiring.Components`)
provides it, so ui/ never imports the layer above it."""

from __future__ import annotations

from typing import Protocol

from assistant_core.chat_model import ChatModel
from assistant_core.db import Database
from assistant_core.settings import Settings
from dialog.protocols import ConversationStore
from knowledge.base import KnowledgeBase
from ui.channel.service import DialogService


class Backend(Protocol):
    """The parts a server or a terminal chat runs on, each built on first use."""

    @property
    def settings(self) -> Settings: ...

    @property
    def database(self) -> Database: ...

    @property
    def knowledge(self) -> KnowledgeBase: ...

    @property
    def store(self) -> ConversationStore: ...

    @property
    def chat_model(self) -> ChatModel: ...

    @property
    def assistant(self) -> DialogService: ...

    def warm_up(self) -> None:
        """Load the models and fill the caches before the first customer waits for them."""
