"""The web chat shows the company's own title, introduction, placeholder, example questions and
greeting (the domain file's persona), and neutral texts without one: never the demo shop's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving
from ui.runtime import Runtime
from ui.server import create_app
from ui.web import WebChat

pytestmark = pytest.mark.unit

PERSONA = """\
persona:
  company: Acme Kettles
  greeting: "Hi, this is Acme Kettles support. What can we do for your kettle?"
  web:
    title: Acme Kettles help
    intro: Ask us anything about your kettle.
    placeholder: Ask about descaling, warranty, spare parts…
    examples: ["How do I descale my kettle?"]
"""


NEUTRAL_GREETING = "Hello! How can I help you today?"


def _page_config(settings: Settings) -> str:
    parts = Components(settings, {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})
    try:
        with serving(create_app(parts)) as base:
            return httpx.get(f"{base}/config").text
    finally:
        parts.close()


def test_the_page_shows_the_personas_texts(tmp_path: Path) -> None:
    domain = tmp_path / "domain.yaml"
    domain.write_text(PERSONA)
    config = _page_config(Settings(domain=str(domain)))
    for text in (
        "Acme Kettles help",
        "Ask us anything about your kettle.",
        "Ask about descaling, warranty, spare parts…",
        "How do I descale my kettle?",
    ):
        assert text in config
    assert _chat_texts(config) == [
        ("assistant", "Hi, this is Acme Kettles support. What can we do for your kettle?")
    ], "the greeting is the chat's first message, the assistant's"


def test_without_a_persona_the_page_is_neutral() -> None:
    config = _page_config(Settings(domain="none"))
    assert "Support assistant" in config and "Ask a question…" in config
    assert "Northwind" not in config and "shipping, returns" not in config
    assert _chat_texts(config) == [("assistant", NEUTRAL_GREETING)]


def _chat_texts(config: str) -> list[tuple[str, str]]:
    """The chat's messages as the page loads them: (role, text)."""
    (chat,) = [
        c["props"]["value"]
        for c in json.loads(config)["components"]
        if c.get("props", {}).get("elem_id") == "chatbot"
    ]
    return [(m["role"], "".join(part["text"] for part in m["content"])) for m in chat]


def _on_worker_thread(function: Callable[[], list[Any]]) -> list[Any]:
    """As Gradio runs a synchronous handler: on a worker thread of an event loop."""

    async def run() -> list[Any]:
        return await anyio.to_thread.run_sync(function)

    return asyncio.run(run())


def _web_chat(tmp_path: Path, greeting: str) -> tuple[WebChat, Components]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    domain = tmp_path / "domain.yaml"
    domain.write_text(f"persona:\n  greeting: {json.dumps(greeting)}\n")
    parts = Components(
        Settings(domain=str(domain), data_dir=str(tmp_path / "data")),
        {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()},
    )
    return WebChat(Runtime(parts)), parts


def test_a_new_conversation_greets_again_and_a_resumed_one_shows_its_history(
    tmp_path: Path,
) -> None:
    chat, parts = _web_chat(tmp_path, "Welcome to Acme Kettles.")
    try:
        greeting = [{"role": "assistant", "content": "Welcome to Acme Kettles."}]
        assert chat.greeting() == greeting
        assert chat.new_conversation()[0] == greeting
        steps = _on_worker_thread(
            lambda: list(chat.respond("kettle warranty?", greeting, "", "", {}))
        )
        history, conversation_id, token = steps[-1][1], steps[0][2], steps[0][5]
        owned = steps[0][6]
        assert history[0] == greeting[0] and [m["role"] for m in history] == [
            "assistant",
            "user",
            "assistant",
        ]
        # the greeting is shown, not stored: the conversation holds the question and its answer
        events = parts.assistant.history(conversation_id)
        assert events[0].type == "user", "no greeting event before the question"
        assert "Welcome" not in json.dumps([e.payload() for e in events])
        # a thumbs-up on the greeting rates nothing; on the answer after it, that answer
        liked = [SimpleNamespace(index=i, liked=True) for i in (0, 2)]
        assert chat.feedback(cast(Any, liked[0]), conversation_id, history, token) == (
            "Only answers can be rated."
        )
        assert chat.feedback(cast(Any, liked[1]), conversation_id, history, token).startswith(
            "Thanks"
        )
        numbered = parts.store.numbered_events(conversation_id)
        rated = [e for _, e in numbered if e.type == "feedback"]
        answer = [seq for seq, e in numbered if e.type == "bot"][0]
        assert len(rated) == 1 and rated[0].target_seq == answer  # type: ignore[attr-defined]
        resumed = chat.resume(conversation_id, owned)[0]
        assert [m["role"] for m in resumed] == ["user", "assistant"], "history, no greeting"
        assert chat.new_conversation()[0] == greeting, "New conversation greets again"
    finally:
        parts.close()


def test_an_empty_greeting_shows_nothing_and_a_greeting_reads_as_written(tmp_path: Path) -> None:
    chat, parts = _web_chat(tmp_path / "empty", "")
    try:
        assert chat.greeting() == [] and chat.new_conversation()[0] == []
    finally:
        parts.close()
    chat, parts = _web_chat(tmp_path / "marked", "Hi <b>there</b> *friend*\u202e\x1b[31m!")
    try:
        (message,) = chat.greeting()
        # escaped like document text in the chat: no HTML, no Markdown, no control characters
        assert message["content"] == r"Hi \<b\>there\</b\> \*friend\*!"
    finally:
        parts.close()


def test_the_terminal_chat_greets_in_the_companys_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from ui.terminal import TerminalChat

    domain = tmp_path / "domain.yaml"
    domain.write_text('persona:\n  greeting: "Hi, this is Acme Kettles support."\n')
    parts = Components(
        Settings(domain=str(domain)), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()}
    )
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO("/quit\n"))
    TerminalChat(parts, console=Console(file=out, width=120)).run()
    parts.close()
    assert "Hi, this is Acme Kettles support." in out.getvalue()
    assert "assistant ingest docs/" in out.getvalue()  # the empty knowledge base's hint
