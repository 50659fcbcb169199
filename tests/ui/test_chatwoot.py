"""The Chatwoot agent bot against a fake Chatwoot API: a real HTTP server on loopback that records
calls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.ui.conftest import serving
from tests.ui.fake_http import Recorder, recording_server
from ui.server import create_app
from ui.signing import sign

pytestmark = pytest.mark.unit
URL = "/webhooks/chatwoot"
TOKEN = "cw-token-123"


def event(**overrides: Any) -> dict[str, Any]:
    """A `message_created` agent-bot event as Chatwoot sends it (trimmed to what matters)."""
    base: dict[str, Any] = {
        "event": "message_created",
        "id": 9001,
        "content": "How long is the warranty on blenders?",
        "created_at": "2026-11-23T19:00:00Z",
        "message_type": "incoming",
        "content_type": "text",
        "content_attributes": {},
        "source_id": None,
        "private": False,
        "sender": {"id": 7, "name": "Ada", "type": "contact"},
        "inbox": {"id": 3, "name": "Website"},
        "conversation": {
            "id": 42,
            "inbox_id": 3,
            "status": "pending",
            "channel": "Channel::WebWidget",
        },
        "account": {"id": 1, "name": "Northwind"},
    }
    base.update(overrides)
    return base


@pytest.fixture
def chatwoot(components: Components, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """The fake Chatwoot API, with the components' settings pointed at it (no webhook secret)."""
    with recording_server() as fake:
        monkeypatch.setattr(components.settings, "chatwoot_base_url", fake.url)
        monkeypatch.setattr(components.settings, "chatwoot_api_token", SecretStr(TOKEN))
        monkeypatch.setattr(components.settings, "chatwoot_webhook_secret", None)
        yield fake


def _post(
    base: str, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        base + URL,
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def test_a_contact_message_is_answered_through_the_messages_api(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
) -> None:
    model.enqueue("Blenders have a two year warranty.")
    with serving(create_app(components, web=False)) as base:
        response = _post(base, event())
        assert response.status_code == 200 and response.json()["status"] == "accepted"
        (call,) = chatwoot.wait_for(1)
    assert call.path == "/api/v1/accounts/1/conversations/42/messages"
    assert call.headers["api_access_token"] == TOKEN
    body = call.json()
    assert body["message_type"] == "outgoing" and body["private"] is False
    assert body["content"].startswith("Blenders have a two year warranty.")
    assert "Sources: Blender warranty" in body["content"]
    evidence = body["content"].split("Sources: Blender warranty\n", 1)[1]
    assert evidence.startswith("“"), "the evidence follows the sources line"
    assert evidence.endswith(
        "The warranty on blenders lasts two years from delivery.” (Blender warranty)"
    )
    history = components.assistant.history("chatwoot-1-42")
    assert history[0].channel == "chatwoot"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "overrides",
    [
        {"message_type": "outgoing", "sender": {"id": 2, "name": "Bot", "type": "agent_bot"}},
        {"message_type": "outgoing", "sender": {"id": 5, "name": "Agent Smith", "type": "user"}},
        {"private": True},
        {"event": "conversation_created"},
        {"event": "message_updated"},
        {"conversation": {"id": 42, "status": "open"}},
        {"content": "  "},
    ],
    ids=[
        "own-message",
        "agent-message",
        "private-note",
        "other-event",
        "update",
        "human-has-it",
        "no-text",
    ],
)
def test_events_that_are_not_a_contact_asking_are_ignored(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
    overrides: dict[str, Any],
) -> None:
    with serving(create_app(components, web=False)) as base:
        response = _post(base, event(**overrides))
        time.sleep(0.2)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert chatwoot.received == [] and model.requests == []


def test_the_same_message_twice_is_answered_once(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
) -> None:
    model.enqueue("Two years.")
    with serving(create_app(components, web=False)) as base:
        assert _post(base, event()).json()["status"] == "accepted"
        assert _post(base, event()).json()["status"] == "duplicate"
        chatwoot.wait_for(1)
        time.sleep(0.2)
    assert len(chatwoot.received) == 1 and len(model.requests) == 1


def test_signature_is_required_when_a_secret_is_set(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(components.settings, "chatwoot_webhook_secret", SecretStr("cw-secret"))
    model.enqueue("Two years.")
    body = json.dumps(event()).encode()
    ts = str(int(time.time()))
    with serving(create_app(components, web=False)) as base:
        assert _post(base, event()).status_code == 401
        wrong = {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Signature": sign("other", ts, body)}
        assert httpx.post(base + URL, content=body, headers=wrong).status_code == 401
        right = {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Signature": sign("cw-secret", ts, body)}
        assert httpx.post(base + URL, content=body, headers=right).json()["status"] == "accepted"
        chatwoot.wait_for(1)


def test_not_configured_is_503(components: Components) -> None:
    with serving(create_app(components, web=False)) as base:
        assert _post(base, event()).status_code == 503


def test_handoff_opens_the_conversation_for_a_human_and_an_agent_hands_it_back(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
) -> None:
    model.enqueue("Two years.")
    with serving(create_app(components, web=False)) as base:
        assert _post(base, event(content="/handoff")).json()["status"] == "accepted"
        message_call, status_call = chatwoot.wait_for(2)
        assert "colleague" in message_call.json()["content"]
        assert status_call.path == "/api/v1/accounts/1/conversations/42/toggle_status"
        assert status_call.json() == {"status": "open"}
        assert status_call.headers["api_access_token"] == TOKEN
        assert components.assistant.state("chatwoot-1-42").handoff

        # the agent sends the conversation back to the bot: it answers again
        back = {
            "event": "conversation_status_changed",
            "id": 42,
            "status": "pending",
            "account": {"id": 1},
        }
        assert _post(base, back).json()["status"] == "handed_back"
        assert not components.assistant.state("chatwoot-1-42").handoff
        assert (
            _post(base, event(id=9002, content="blender warranty")).json()["status"] == "accepted"
        )
        third = chatwoot.wait_for(3)[2]
    assert third.json()["content"].startswith("Two years.")


def test_chatwoot_refusing_our_reply_is_recorded_not_raised(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
) -> None:
    chatwoot.statuses = [401]
    model.enqueue("Two years.")
    with serving(create_app(components, web=False)) as base:
        _post(base, event())
        chatwoot.wait_for(1)
        row = _wait_for_status(components, "1:9001", "failed")
    assert "401" in (row.error or ""), "a refusal is dead-lettered at once, with its reason"
    assert len(chatwoot.received) == 1


def _wait_for_status(components: Components, delivery_id: str, status: str) -> Any:
    """The delivery's row once it has `status` (polled; a generous deadline, no fixed sleep)."""
    from ui.jobs import DeliveryQueue

    queue = DeliveryQueue(components.database.session)
    deadline = time.monotonic() + 30
    while True:
        row = queue.get("chatwoot", delivery_id)
        if row is not None and row.status == status:
            return row
        assert time.monotonic() < deadline, f"{delivery_id}: {row and row.status} != {status}"
        time.sleep(0.02)


def test_a_handoff_is_not_lost_when_posting_the_reply_fails(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(components.settings, "delivery_retry_schedule", "0.05,0.05")
    chatwoot.statuses = [503]  # the reply POST fails once; the status change goes through
    with serving(create_app(components, web=False)) as base:
        assert _post(base, event(content="/handoff")).json()["status"] == "accepted"
        calls = chatwoot.wait_for(3)
        row = _wait_for_status(components, "1:9001", "handed_off")
    paths = [call.path.rsplit("/", 1)[-1] for call in calls]
    assert paths == ["messages", "toggle_status", "messages"], "status not skipped, reply re-sent"
    assert calls[0].json() == calls[2].json(), "the same reply, not a new turn"
    assert row.attempts == 1
    assert model.requests == [], "a command: the model was never asked"


def test_a_resolved_conversation_is_answered_again_when_the_contact_writes(
    components: Components,
    model: FakeChatModel,
    chatwoot: Recorder,
) -> None:
    # some Chatwoot versions send agent bots no conversation_status_changed: the status the
    # next message carries says the agent resolved it
    model.enqueue("Two years.")
    with serving(create_app(components, web=False)) as base:
        _post(base, event(content="/handoff"))
        chatwoot.wait_for(2)
        _wait_for_status(components, "1:9001", "handed_off")
        assert components.assistant.state("chatwoot-1-42").handoff
        opened = event(id=9002, content="hello?", conversation={"id": 42, "status": "open"})
        assert _post(base, opened).json()["status"] == "ignored", "a human has it"
        resolved = event(id=9003, content="blender warranty")
        resolved["conversation"] = {"id": 42, "status": "resolved"}
        assert _post(base, resolved).json()["status"] == "accepted"
        third = chatwoot.wait_for(3)[2]
    assert third.json()["content"].startswith("Two years.")
    assert not components.assistant.state("chatwoot-1-42").handoff
