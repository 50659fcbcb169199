"""LM server down, slow or killed mid-stream: a clear message, the user turn kept, the next turn
works."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.events import AnswerFailed, BotUttered, UserUttered
from dialog.messages import Message
from tests.fakes import HashingEmbedder
from tests.reliability.faulty_lm import Faults, faulty_app
from tests.ui.conftest import free_port, serving, write_docs

pytestmark = pytest.mark.integration

QUESTION = "How long does the blender warranty last?"


GROUNDED = "Your blender is covered for two years from delivery."


@pytest.fixture
def faults() -> Faults:
    """An answer the passages support: the grounding check lets it through unchanged."""
    return Faults(answer=GROUNDED)


@pytest.fixture
def lm_url(faults: Faults) -> Iterator[str]:
    with serving(faulty_app(faults)) as base:
        yield f"{base}/v1"


def _components(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Components:
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", url)
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT_S", "1.5")
    parts = Components(Settings(), {"embedder": HashingEmbedder()})
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    return parts


def _assert_failure_recorded(parts: Components, reply_text: str, cid: str) -> None:
    """User turn kept, the unfinished answer marked failed, what the user saw stored after it."""
    events = [
        e
        for e in parts.assistant.history(cid)
        if isinstance(e, UserUttered | AnswerFailed | BotUttered)
    ]
    assert [type(e) for e in events] == [UserUttered, AnswerFailed, BotUttered]
    assert events[0].text == QUESTION
    assert events[2].text == reply_text and GROUNDED not in events[2].text
    assert "two years" in reply_text.lower(), "the extractive fallback quotes the knowledge base"


def _assert_recovers(parts: Components, faults: Faults, cid: str) -> None:
    faults.mode = "ok"
    started = time.monotonic()
    again = parts.assistant.handle(Message(QUESTION, cid))
    assert time.monotonic() - started < 10, "the lock was released"
    assert again.answer == faults.answer.strip()
    assert isinstance(parts.assistant.history(cid)[-1], BotUttered)


@pytest.mark.parametrize("mode", ["slow", "die_mid_stream", "overloaded"])
def test_faulty_server_gives_a_clear_message_and_recovers(
    mode: str, faults: Faults, lm_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _components(lm_url, tmp_path, monkeypatch)
    faults.mode = mode
    reply = parts.assistant.handle(Message(QUESTION, f"fault-{mode}"))
    assert "language model" in reply.answer.lower()
    assert reply.sources and reply.sources[0].source.endswith("warranty.md")
    _assert_failure_recorded(parts, reply.answer, f"fault-{mode}")
    _assert_recovers(parts, faults, f"fault-{mode}")
    parts.close()


def test_server_down_gives_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _components(f"http://127.0.0.1:{free_port()}/v1", tmp_path, monkeypatch)
    reply = parts.assistant.handle(Message(QUESTION, "down"))
    assert "language model" in reply.answer.lower()
    _assert_failure_recorded(parts, reply.answer, "down")
    parts.close()
