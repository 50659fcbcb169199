"""Hostile text through the whole message path: refused clearly or stored and shown safely, never a
crash."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant_core.db import Database
from dialog.events import UserUttered
from dialog.guard import check_message
from dialog.manager import Assistant, TurnOptions
from dialog.messages import Message
from dialog.store import SqlConversationStore
from knowledge.base import KnowledgeBase
from tests.fakes import FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|[\ud800-\udfff]")
NASTY = st.sampled_from(
    [
        "\x00",
        "\ud800",
        "\udfff",
        "\u200b",
        "\u200e",
        "\u202e",
        "\u2066",
        "\ufeff",
        "\x1b[31m",
        "\x1b]0;title\x07",
        "\x1b]8;;http://evil.example\x1b\\",
        "\r",
        "\x7f",
        "\u0085",
        "ñ",
        "😀",
        "/",
        "\n",
        " ",
    ]
)
HOSTILE_TEXT = st.lists(st.one_of(NASTY, st.text(max_size=20)), max_size=30).map("".join)


@given(HOSTILE_TEXT)
@settings(max_examples=300, deadline=None)
def test_guard_output_is_always_safe(text: str) -> None:
    verdict = check_message(text, max_chars=200)
    assert not _UNSAFE.search(verdict.text)
    verdict.text.encode("utf-8")
    if verdict.refusal is None:
        assert 0 < len(verdict.text) <= 200


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("hostile")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text(
        "# Shipping\n\nStandard shipping takes three business days.\n"
    )
    database = Database(f"sqlite:///{folder / 'db.sqlite'}")
    knowledge = KnowledgeBase(database.session, HashingEmbedder(), folder / "index")
    knowledge.ingest([docs])
    model = FakeChatModel()
    options = (
        TurnOptions(max_message_chars=500, route_with_model=False, extract_with_model=False)
        if hasattr(TurnOptions, "route_with_model")
        else TurnOptions(max_message_chars=500)
    )
    return Assistant(SqlConversationStore(database.session), knowledge, model, options)


@given(text=HOSTILE_TEXT, number=st.integers(0, 10**6))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_text_gets_a_reply_and_is_stored_safely(
    assistant: Assistant, text: str, number: int
) -> None:
    assistant.model.enqueue(*["Fine.\x1b]0;pwned\x07"] * 3)  # type: ignore[attr-defined]
    conversation = f"h{number}"
    reply = assistant.handle(Message(text, conversation, channel="web"))
    assert isinstance(reply.answer, str) and (reply.answer or reply.handoff)
    for event in assistant.history(conversation):
        if isinstance(event, UserUttered):
            assert not _UNSAFE.search(event.text)
            event.text.encode("utf-8")
    assistant.model.replies.clear()  # type: ignore[attr-defined]
