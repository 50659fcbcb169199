"""A smaller load run with the real packaged model behind the embedded model server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from assistant.demo import HELP_CENTRE
from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.events import AnswerFailed, BotUttered, UserUttered
from tests.ui.conftest import TOKEN_HEADER, scoped, serving
from ui.server import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = [
    "How much does standard shipping cost?",
    "How do I start a return?",
    "When will I get my refund?",
]
CONVERSATIONS = 4


@pytest.mark.timeout(600)
def test_concurrent_conversations_with_the_real_model(
    chat_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_NEW_TOKENS", "40")
    parts = Components(Settings(model_dir=chat_model_dir.parent))
    parts.knowledge.ingest([HELP_CENTRE])

    async def conversation(
        client: httpx.AsyncClient, base: str, number: int
    ) -> list[dict[str, object]]:
        replies, token = [], ""
        for question in QUESTIONS:
            response = await client.post(
                f"{base}/api/v1/messages",
                json={"conversation_id": f"real-{number}", "text": question},
                headers={TOKEN_HEADER: token} if token else {},
            )
            assert response.status_code == 200, response.text
            token = token or response.headers[TOKEN_HEADER]  # returned when it starts
            replies.append(response.json())
        return replies

    async def drive(base: str) -> list[list[dict[str, object]]]:
        async with httpx.AsyncClient(timeout=300) as client:
            return await asyncio.gather(
                *(conversation(client, base, n) for n in range(CONVERSATIONS))
            )

    with serving(create_app(parts, web=False)) as base:
        results = asyncio.run(drive(base))
    for number, replies in enumerate(results):
        assert all(str(r["answer"]).strip() for r in replies)
        assert all(r["conversation_id"] == scoped(f"real-{number}") for r in replies)
        events = [
            e
            for e in parts.store.events(scoped(f"real-{number}"))
            if isinstance(e, UserUttered | BotUttered | AnswerFailed)
        ]
        assert [type(e) for e in events] == [UserUttered, BotUttered] * len(QUESTIONS)
        assert [e.text for e in events if isinstance(e, UserUttered)] == QUESTIONS
        assert [e.text for e in events if isinstance(e, BotUttered)] == [
            r["answer"] for r in replies
        ]
    parts.close()
