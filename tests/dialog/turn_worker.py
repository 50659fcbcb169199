"""Run in a child process: send messages to one conversation through a full Assistant (for the turn
tests)."""

from __future__ import annotations

import sys

from assistant.demo import HELP_CENTRE
from assistant_core.chat_model import ChatMessages
from assistant_core.db import Database
from dialog.manager import Assistant, TurnOptions
from dialog.messages import Message
from dialog.store import SqlConversationStore
from tests.dialog.keyword_kb import KeywordKnowledge
from tests.fakes import FakeChatModel


def echo(messages: ChatMessages) -> str:
    """The question back, so two processes' crossed turns would show."""
    return "echo: " + str(messages[-1]["content"]).rsplit("Question: ", 1)[-1]


def main(url: str, conversation_id: str, name: str, count: int) -> None:
    database = Database(url)
    assistant = Assistant(
        SqlConversationStore(database.session),
        KeywordKnowledge(HELP_CENTRE),
        # slowly, so two processes' turns would interleave without the lock
        FakeChatModel(default=echo, complete_default="", chunk_delay_s=0.01),
        TurnOptions(summarize_after=100, check_relevance=False),
    )
    for i in range(count):
        assistant.handle(
            Message(f"{name}{i} how much does standard shipping cost", conversation_id)
        )
    database.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
