"""Callbacks over the durable queue: a receiver down then up gets everything once; one down for good
leaves dead letters that `assistant deliveries` lists and `retry` delivers; /metrics shows it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant.cli.app import App
from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.reliability.delivery_cluster import Receiver, deliver
from tests.ui.conftest import serving
from ui.jobs import DeliveryQueue
from ui.server import create_app

pytestmark = pytest.mark.unit
IDS = [f"d-{n}" for n in range(5)]


def _rows(components: Components) -> dict[str, Any]:
    return {row.delivery_id: row for row in DeliveryQueue(components.database.session).listing()}


def _wait(condition: Any, what: str, deadline_s: float = 60.0) -> None:
    """Poll observable state with a generous deadline (no fixed sleeps)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    down = Receiver()  # its port is reserved but nothing listens yet: connection refused
    yield down
    down.down()


def _send(base: str, receiver: Receiver) -> None:
    for number, delivery_id in enumerate(IDS):
        assert deliver(base, delivery_id, f"crm-{number}", "blender warranty", receiver.url) == 202


def test_a_receiver_down_then_up_gets_every_callback_once(
    components: Components, model: FakeChatModel, receiver: Receiver
) -> None:
    components.settings.delivery_retry_schedule = "0.05,0.05,2,2,2,2,2,2,2,2,2,2"
    model.enqueue(*["Two years."] * len(IDS))
    with serving(create_app(components, web=False)) as base:
        _send(base, receiver)
        _wait(
            lambda: all(r.attempts >= 2 for r in _rows(components).values()),
            "every callback failed twice",
        )
        receiver.up()
        _wait(
            lambda: all(r.status == "delivered" for r in _rows(components).values()),
            "all are delivered",
        )
        metrics = httpx.get(base + "/metrics").text
    assert receiver.copies() == dict.fromkeys(IDS, 1)
    assert all(body[0]["answer"] == "Two years." for body in receiver.received.values())
    assert len(model.requests) == len(IDS), "each answer generated once, re-sent on retries"
    assert 'assistant_delivery_retries_total{source="generic"}' in metrics
    assert 'assistant_delivery_queue_depth{status="pending"} 0' in metrics
    assert "assistant_delivery_dead_letters 0" in metrics


def test_a_receiver_down_for_good_leaves_dead_letters_that_retry_delivers(
    components: Components, model: FakeChatModel, receiver: Receiver
) -> None:
    components.settings.delivery_retry_schedule = "0.05,0.05"
    model.enqueue(*["Two years."] * len(IDS))
    runner = CliRunner()
    with serving(create_app(components, web=False)) as base:
        _send(base, receiver)
        _wait(
            lambda: all(r.status == "failed" for r in _rows(components).values()),
            "all are dead letters",
        )
        metrics = httpx.get(base + "/metrics").text
        assert f"assistant_delivery_dead_letters {len(IDS)}" in metrics
        assert 'assistant_delivery_dead_letters_total{source="generic"} 5' in metrics

        listed = runner.invoke(
            main, ["deliveries", "list", "--status", "failed", "--json"], obj=App()
        )
        assert listed.exit_code == 0, listed.output
        letters = [json.loads(line) for line in listed.stdout.splitlines()]
        assert sorted(item["delivery_id"] for item in letters) == IDS
        assert all(item["attempts"] == 3 and "ConnectError" in item["error"] for item in letters)

        receiver.up()
        retried = runner.invoke(main, ["deliveries", "retry", "--failed"], obj=App())
        assert retried.exit_code == 0 and "5 delivery(ies) queued again" in retried.output
        _wait(
            lambda: all(r.status == "delivered" for r in _rows(components).values()),
            "the retried are delivered",
        )
    assert receiver.copies() == dict.fromkeys(IDS, 1)
    assert len(model.requests) == len(IDS), "re-sent, not regenerated"
    assert runner.invoke(main, ["deliveries", "retry"], obj=App()).exit_code == 2


def test_retry_by_id_and_the_plain_listing(
    components: Components, model: FakeChatModel, receiver: Receiver
) -> None:
    components.settings.delivery_retry_schedule = ""  # no retries: the first failure is final
    model.enqueue("Two years.")
    runner = CliRunner()
    with serving(create_app(components, web=False)) as base:
        assert deliver(base, "d-one", "crm-1", "blender warranty", receiver.url) == 202
        _wait(lambda: _rows(components)["d-one"].status == "failed", "a dead letter")
        row = _rows(components)["d-one"]
        listed = runner.invoke(main, ["deliveries", "list"], obj=App())
        assert f"{row.id:7d}  failed" in listed.stdout
        receiver.up()
        retried = runner.invoke(main, ["deliveries", "retry", str(row.id)], obj=App())
        assert "1 delivery(ies) queued again" in retried.output
        _wait(lambda: _rows(components)["d-one"].status == "delivered", "delivered")
    assert receiver.copies() == {"d-one": 1}


def test_past_the_grace_period_leases_are_released_and_the_answer_is_resent_not_regenerated(
    components: Components, receiver: Receiver
) -> None:
    from tests.fakes import FakeChatModel, Gate

    gate = Gate(timeout_s=30)
    gated = FakeChatModel(before_chunk=gate).enqueue("Two years.")
    components.__dict__.pop("assistant", None)
    components.overrides["chat_model"] = gated
    components.__dict__.pop("chat_model", None)
    components.settings.shutdown_grace_s = 0.1
    receiver.up()

    def release_once_handed_back() -> None:
        _wait(lambda: _rows(components)["d-0"].worker is None, "the lease is released")
        gate.release.set()  # the turn still in the model ends after its process let go

    watcher = threading.Thread(target=release_once_handed_back)
    with serving(create_app(components, web=False)) as base:
        assert deliver(base, "d-0", "crm-0", "blender warranty", receiver.url) == 202
        assert gate.entered.wait(30)
        watcher.start()
    watcher.join(60)
    assert _rows(components)["d-0"].status == "pending", "released, not left running"
    assert receiver.count() == 0
    with serving(create_app(components, web=False)):  # the next process takes it
        _wait(lambda: _rows(components)["d-0"].status == "delivered", "delivered")
    assert receiver.copies() == {"d-0": 1}
    assert receiver.received["d-0"][0]["answer"] == "Two years."
    assert len(gated.requests) == 1, "the stored answer was re-sent, not regenerated"
