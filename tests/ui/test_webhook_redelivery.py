"""A delivery id the dialog manager has seen is one turn: its stored answer is given again, and a
turn a crash interrupted is resumed, never stored twice (dialog/redelivery.py)."""

from __future__ import annotations

import pytest

from assistant.wiring import Components
from dialog import events as ev
from dialog.messages import Message
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit
QUESTION = "How long is the blender warranty?"


def _talk(components: Components, cid: str) -> list[tuple[str, str | None]]:
    return [
        (event.type, getattr(event, "delivery_id", None))
        for event in components.assistant.history(cid)
        if isinstance(event, ev.UserUttered | ev.BotUttered)
    ]


def test_a_delivery_seen_before_gets_its_stored_answer_without_a_new_turn(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.", "Something else.")
    message = Message(QUESTION, "crm-1", channel="webhook", delivery_id="d-1")
    first = components.assistant.handle(message)
    again = components.assistant.handle(message)
    assert first.answer == again.answer == "Two years."
    assert [s.chunk_id for s in again.sources] == [s.chunk_id for s in first.sources]
    assert len(model.requests) == 1, "not regenerated"
    assert _talk(components, "crm-1") == [("user", "d-1"), ("bot", None)]


def test_a_turn_interrupted_after_its_user_event_is_resumed_once(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    # what a worker killed mid-answer leaves: the user event, no answer
    components.store.append(
        "crm-2", [ev.UserUttered(QUESTION, "webhook", "d-2")], channel="webhook"
    )
    reply = components.assistant.handle(
        Message(QUESTION, "crm-2", channel="webhook", delivery_id="d-2")
    )
    assert reply.answer == "Two years."
    assert _talk(components, "crm-2") == [("user", "d-2"), ("bot", None)]
    assert components.assistant.state("crm-2").turns == 1


def test_messages_without_a_delivery_id_are_never_merged(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.", "Two years.")
    for _ in range(2):
        components.assistant.handle(Message(QUESTION, "web-1", channel="web"))
    assert _talk(components, "web-1") == [("user", None), ("bot", None)] * 2
