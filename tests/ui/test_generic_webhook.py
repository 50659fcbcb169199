"""The generic signed webhook over a real server: signatures, limits, duplicates, callbacks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistant.wiring import Components
from tests.fakes import FakeChatModel, Gate
from tests.ui.conftest import SECRET, serving
from tests.ui.fake_http import recording_server
from ui.server import create_app
from ui.signing import sign, verify

pytestmark = pytest.mark.unit
URL = "/webhooks/generic"


def signed(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Assistant-Timestamp": ts,
        "X-Assistant-Signature": sign(secret, ts, body),
    }


def delivery(delivery_id: str = "d-1", **extra: Any) -> bytes:
    return json.dumps(
        {
            "delivery_id": delivery_id,
            "conversation_id": "crm-42",
            "text": "blender warranty",
            **extra,
        }
    ).encode()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callbacks tried again within a second, not over days."""
    monkeypatch.setenv("ASSISTANT_DELIVERY_RETRY_SCHEDULE", "0.05,0.05,0.05")


@pytest.fixture
def base(components: Components) -> Iterator[str]:
    with serving(create_app(components, web=False)) as url:
        yield url


def test_signed_delivery_is_answered_with_sources(
    base: str, model: FakeChatModel, components: Components
) -> None:
    model.enqueue("Two years.")
    body = delivery(sender={"id": "c-17", "name": "Ada"})
    response = httpx.post(base + URL, content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "Two years."
    assert response.json()["conversation_id"] == "crm-42"
    assert response.json()["sources"][0]["source"].endswith("warranty.md")
    user = components.assistant.history("crm-42")[0]
    assert (user.channel, user.delivery_id) == ("webhook", "d-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Assistant-Timestamp": "now", "X-Assistant-Signature": "sha256=" + "0" * 64},
        {"X-Assistant-Signature": "sha256=" + "0" * 64},
        {"X-Assistant-Timestamp": "1", "X-Assistant-Signature": "md5=abc"},
    ],
    ids=["missing", "malformed-timestamp", "no-timestamp", "malformed-signature"],
)
def test_missing_or_malformed_signature_is_401(base: str, headers: dict[str, str]) -> None:
    assert httpx.post(base + URL, content=delivery(), headers=headers).status_code == 401


def test_wrong_secret_tampered_body_and_stale_timestamp_are_401(base: str) -> None:
    body = delivery()
    assert (
        httpx.post(base + URL, content=body, headers=signed(body, secret="guess")).status_code
        == 401
    )
    tampered = body.replace(b"blender", b"BLENDER")
    assert httpx.post(base + URL, content=tampered, headers=signed(body)).status_code == 401
    old = int(time.time()) - 301
    assert (
        httpx.post(base + URL, content=body, headers=signed(body, timestamp=old)).status_code == 401
    )
    future = int(time.time()) + 400
    assert (
        httpx.post(base + URL, content=body, headers=signed(body, timestamp=future)).status_code
        == 401
    )


def test_previous_secret_still_works_during_rotation(
    components: Components, model: FakeChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    monkeypatch.setattr(components.settings, "webhook_secret", SecretStr("new-secret"))
    monkeypatch.setattr(components.settings, "webhook_secret_previous", SecretStr(SECRET))
    model.enqueue("Two years.", "Two years.")
    with serving(create_app(components, web=False)) as base:
        old = delivery("d-old")
        new = delivery("d-new")
        assert httpx.post(base + URL, content=old, headers=signed(old)).status_code == 200
        assert (
            httpx.post(
                base + URL, content=new, headers=signed(new, secret="new-secret")
            ).status_code
            == 200
        )
        assert (
            httpx.post(base + URL, content=new, headers=signed(new, secret="other")).status_code
            == 401
        )


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({"delivery_id": "d", "text": "hi"}).encode(),
        json.dumps({"delivery_id": "d", "conversation_id": "c", "text": ""}).encode(),
        json.dumps(
            {
                "delivery_id": "d",
                "conversation_id": "c",
                "text": "x",
                "callback_url": "file:///etc/passwd",
            }
        ).encode(),
    ],
    ids=["malformed", "not-object", "missing-conversation", "empty-text", "bad-callback"],
)
def test_malformed_json_or_missing_fields_is_400(base: str, body: bytes) -> None:
    response = httpx.post(base + URL, content=body, headers=signed(body))
    assert response.status_code == 400, response.text


def test_body_over_the_limit_is_413_before_anything_else(base: str, components: Components) -> None:
    body = delivery(text="x" * (components.settings.max_body_bytes + 1))
    assert httpx.post(base + URL, content=body, headers=signed(body)).status_code == 413
    assert httpx.post(base + URL, content=body).status_code == 413


def test_without_a_secret_configured_the_webhook_is_off(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components.settings, "webhook_secret", None)
    with serving(create_app(components, web=False)) as base:
        body = delivery()
        assert httpx.post(base + URL, content=body, headers=signed(body)).status_code == 503


def test_the_same_delivery_again_is_a_duplicate(base: str, model: FakeChatModel) -> None:
    model.enqueue("Two years.")
    body = delivery("d-twice")
    assert (
        httpx.post(base + URL, content=body, headers=signed(body)).json()["answer"] == "Two years."
    )
    again = httpx.post(base + URL, content=body, headers=signed(body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(model.requests) == 1


def test_a_duplicate_while_the_first_is_still_running_gets_no_second_answer(
    components: Components,
) -> None:
    gate = Gate()  # holds the turn inside the model: a second delivery arrives meanwhile
    gated = FakeChatModel(before_chunk=gate).enqueue("Two years.")
    components.__dict__.pop("assistant", None)
    components.overrides["chat_model"] = gated
    components.__dict__.pop("chat_model", None)
    body = delivery("d-race")
    results: list[httpx.Response] = []
    with serving(create_app(components, web=False)) as base:
        first = threading.Thread(
            target=lambda: results.append(
                httpx.post(base + URL, content=body, headers=signed(body), timeout=30)
            )
        )
        first.start()
        assert gate.entered.wait(20)
        second = httpx.post(base + URL, content=body, headers=signed(body))
        assert second.status_code == 200 and second.json() == {
            "status": "duplicate",
            "delivery_id": "d-race",
        }
        gate.release.set()
        first.join(30)
    assert results[0].json()["answer"] == "Two years."
    assert len(gated.requests) == 1


def test_a_failed_turn_releases_the_delivery_for_a_retry(base: str, model: FakeChatModel) -> None:
    model.enqueue(ConnectionError("model down"), "Two years.")
    body = delivery("d-retry")
    assert httpx.post(base + URL, content=body, headers=signed(body)).status_code == 500
    retried = httpx.post(base + URL, content=body, headers=signed(body))
    assert retried.status_code == 200 and retried.json()["answer"] == "Two years."


def test_callback_gets_202_then_a_signed_reply_after_retries(
    base: str, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    with recording_server() as receiver:
        receiver.statuses = [503, 500]
        body = delivery("d-cb", callback_url=receiver.url + "/hook")
        accepted = httpx.post(base + URL, content=body, headers=signed(body))
        assert accepted.status_code == 202 and accepted.json()["status"] == "accepted"
        attempts = receiver.wait_for(3)
    final = attempts[-1]
    assert final.path == "/hook"
    verify(
        final.body,
        final.headers["x-assistant-timestamp"],
        final.headers["x-assistant-signature"],
        [SECRET],
    )
    assert final.json()["answer"] == "Two years."
    assert final.json()["delivery_id"] == "d-cb" and final.json()["conversation_id"] == "crm-42"
    again = httpx.post(base + URL, content=body, headers=signed(body))
    assert again.json()["status"] == "duplicate"


def test_callback_gives_up_on_a_client_error_without_retrying(
    base: str, model: FakeChatModel, components: Components
) -> None:
    model.enqueue("Two years.")
    with recording_server() as receiver:
        receiver.statuses = [404]
        body = delivery("d-404", callback_url=receiver.url)
        assert httpx.post(base + URL, content=body, headers=signed(body)).status_code == 202
        receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.received) == 1
    from ui.jobs import DeliveryQueue

    row = DeliveryQueue(components.database.session).get("generic", "d-404")
    assert row is not None and row.status == "failed", "a refusal is dead-lettered at once"
    assert row.error == f"callback to {receiver.url} answered 404"


@pytest.mark.parametrize(
    ("url", "allowed", "expected"),
    [
        ("https://crm.example.com/hook", "", True),
        ("https://crm.example.com/hook", "crm.example.com", True),
        ("https://CRM.example.com:8443/hook", "crm.example.com", True),
        ("https://eu.crm.example.com/hook", ".example.com", True),
        ("https://example.com/hook", ".example.com", True),
        ("http://169.254.169.254/latest", "crm.example.com", False),
        ("https://evilexample.com/hook", ".example.com", False),
        ("https://crm.example.com.evil.io/hook", "crm.example.com", False),
    ],
)
def test_callback_hosts_allow_list(url: str, allowed: str, expected: bool) -> None:
    from ui.webhooks.generic import callback_allowed

    assert callback_allowed(url, allowed) is expected


def test_a_callback_outside_the_allow_list_is_refused_before_the_claim(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    components.settings.callback_hosts = "crm.example.com"
    with serving(create_app(components, web=False)) as url:
        body = delivery("d-ssrf", callback_url="http://127.0.0.1:9/internal")
        refused = httpx.post(url + URL, content=body, headers=signed(body))
        assert refused.status_code == 400 and "not allowed" in refused.json()["detail"]
        plain = delivery("d-ssrf")  # the same delivery without a callback is still answered
        answered = httpx.post(url + URL, content=plain, headers=signed(plain))
    assert answered.status_code == 200 and answered.json()["answer"] == "Two years."
