"""Load: many conversations at once through the REST API and the signed webhook; nothing lost,
nothing crossed."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.chat_model import ChatMessages
from assistant_core.settings import Settings
from dialog.events import BotUttered, UserUttered
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import SECRET, TOKEN_HEADER, scoped, serving, write_docs
from ui.server import create_app
from ui.signing import signed_headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONVERSATIONS = int(os.environ.get("ASSISTANT_LOAD_CONVERSATIONS", "200"))
TURNS = int(os.environ.get("ASSISTANT_LOAD_TURNS", "20"))
_TAG = re.compile(r"\[(c-\d+) t-(\d+)\]")


def echo_tag(messages: ChatMessages) -> str:
    """The tag of the question asked, so a crossed answer is caught."""
    tags = _TAG.findall(str(messages[-1]["content"]))
    return "Echo " + (f"[{tags[-1][0]} t-{tags[-1][1]}]" if tags else "[none]")


@pytest.fixture
def load_components(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Components]:
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    # this test floods on purpose; test_rate_limits covers the limits
    for group in ("API", "WEBHOOK", "WEB"):
        monkeypatch.setenv(f"ASSISTANT_RATE_LIMIT_{group}_PER_MINUTE", "0")
    parts = Components(
        Settings(),
        {
            "chat_model": FakeChatModel(default=echo_tag, complete_default="{}"),
            "embedder": HashingEmbedder(),
        },
    )
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    yield parts
    parts.close()


async def _conversation(client: httpx.AsyncClient, base: str, number: int) -> list[str]:
    cid = f"c-{number}"
    answers = []
    token: dict[str, str] = {}  # the REST conversation's, from its first reply
    for turn in range(TURNS):
        text = f"How long does the blender warranty last? [{cid} t-{turn}]"
        if number % 2:
            response = await client.post(
                f"{base}/api/v1/messages",
                json={"conversation_id": cid, "text": text},
                headers=token,
            )
            if TOKEN_HEADER in response.headers:
                token = {TOKEN_HEADER: response.headers[TOKEN_HEADER]}
        else:
            body = json.dumps(
                {"delivery_id": f"{cid}-{turn}", "conversation_id": cid, "text": text}
            ).encode()
            headers = {**signed_headers(SECRET, body), "content-type": "application/json"}
            response = await client.post(f"{base}/webhooks/generic", content=body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json()["answer"])
    return answers


@pytest.mark.timeout(900)
def test_many_conversations_at_once_lose_and_cross_nothing(load_components: Components) -> None:
    async def drive(base: str) -> list[list[str]]:
        limits = httpx.Limits(
            max_connections=CONVERSATIONS, max_keepalive_connections=CONVERSATIONS
        )
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            return await asyncio.gather(
                *(_conversation(client, base, n) for n in range(CONVERSATIONS))
            )

    with serving(create_app(load_components, web=False)) as base:
        results = asyncio.run(drive(base))

    store = load_components.store
    for number, answers in enumerate(results):
        cid = f"c-{number}"
        assert answers == [f"Echo [{cid} t-{t}]" for t in range(TURNS)]
        events = store.events(scoped(cid) if number % 2 else cid)  # REST ids are namespaced
        asked = [e.text for e in events if isinstance(e, UserUttered)]
        answered = [e.text for e in events if isinstance(e, BotUttered)]
        assert [m.group(2) for m in map(_TAG.search, asked) if m] == [str(t) for t in range(TURNS)]
        assert answered == [f"Echo [{cid} t-{t}]" for t in range(TURNS)]
