"""Acknowledgements first: while a process acknowledges webhooks its delivery loops take nothing
new, for a bounded time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from ui.runtime import Runtime
from ui.webhooks import generic, worker
from ui.webhooks.worker import DeliveryWorkers

pytestmark = pytest.mark.unit


def _queue_one(workers: DeliveryWorkers, delivery_id: str) -> None:
    payload = {"text": "blender warranty", "conversation_id": delivery_id, "callback_url": None}
    assert workers.queue.enqueue(generic.SOURCE, delivery_id, delivery_id, payload) is not None
    workers.wake()


def _status(workers: DeliveryWorkers, delivery_id: str) -> str:
    row = workers.queue.get(generic.SOURCE, delivery_id)
    assert row is not None
    return row.status


@asynccontextmanager
async def _delivering(components: Components) -> AsyncIterator[DeliveryWorkers]:
    """This process's delivery loops, started and stopped around the block."""
    workers = DeliveryWorkers(Runtime(components), {generic.SOURCE: generic.SENDER})
    await workers.start()
    try:
        yield workers
    finally:
        await workers.stop(grace_s=5)


async def _until_answered(workers: DeliveryWorkers, delivery_id: str) -> None:
    deadline = time.monotonic() + 60
    while _status(workers, delivery_id) != "answered":
        assert time.monotonic() < deadline, f"{delivery_id} was never answered"
        await asyncio.sleep(0.02)


def test_no_delivery_is_taken_while_webhooks_are_being_acknowledged(
    components: Components, model: FakeChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "INTAKE_FIRST_S", 600.0)
    model.enqueue("Blenders carry a two year warranty.")

    async def scenario() -> str:
        async with _delivering(components) as workers:
            with workers.intake():
                _queue_one(workers, "d-1")
                await asyncio.sleep(0.5)  # the woken loops had their chance to take it
                during = _status(workers, "d-1")
            await _until_answered(workers, "d-1")
        return during

    assert asyncio.run(scenario()) == "pending"


def test_a_stream_of_acknowledgements_never_starves_the_answers(
    components: Components, model: FakeChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "INTAKE_FIRST_S", 0.05)
    model.enqueue("Blenders carry a two year warranty.")

    async def scenario() -> None:
        async with _delivering(components) as workers:
            with workers.intake():  # never quiet while the delivery waits
                _queue_one(workers, "d-2")
                await _until_answered(workers, "d-2")

    asyncio.run(scenario())
