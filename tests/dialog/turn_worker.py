"""Run in a child process: send messages to one conversation through a full Assistant (for the turn
tests)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

from assistant.core.chat_model import Completion
from assistant.core.db import Database
from assistant.demo import HELP_CENTRE
from dialog.manager import Assistant, TurnOptions
from dialog.messages import Message
from dialog.store import ConversationStore
from tests.dialog.keyword_kb import KeywordKnowledge


class EchoModel:
    """Answers "echo: QUESTION", slowly, so two processes' turns would interleave without the
    lock."""

    def stream(
        self, messages: Any, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        question = messages[-1]["content"].rsplit("Question: ", 1)[-1]
        for word in f"echo: {question}".split(" "):
            time.sleep(0.01)
            yield word + " "

    def complete(self, messages: Any, **options: Any) -> Completion:
        return Completion(text="")


def main(url: str, conversation_id: str, name: str, count: int) -> None:
    database = Database(url)
    assistant = Assistant(
        ConversationStore(database.session),
        KeywordKnowledge(HELP_CENTRE),
        EchoModel(),
        TurnOptions(summarize_after=100, check_relevance=False),
    )  # type: ignore[arg-type]
    for i in range(count):
        assistant.handle(
            Message(f"{name}{i} how much does standard shipping cost", conversation_id)
        )
    database.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
