"""The durable delivery queue on SQLite and PostgreSQL: leases, retakes, order, dead letters."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from assistant_core.db import Database
from ui.jobs import DeliveryQueue

pytestmark = pytest.mark.unit


def _queue(database: Database) -> DeliveryQueue:
    return DeliveryQueue(database.session)


def test_a_delivery_is_stored_once_and_leased_to_one_worker(database: Database) -> None:
    queue = _queue(database)
    assert queue.enqueue("generic", "d-1", "c-1", {"text": "hi"}) is not None
    assert queue.enqueue("generic", "d-1", "c-1", {"text": "hi"}) is None, "a repeat"
    job = queue.take("a", lease_s=60)
    assert job is not None and job.payload == {"text": "hi"} and job.worker == "a"
    assert queue.take("b", lease_s=60) is None, "leased"
    assert queue.renew(job, lease_s=60)
    assert queue.finish(job, "delivered")
    assert queue.get("generic", "d-1").status == "delivered"  # type: ignore[union-attr]
    assert queue.take("b", lease_s=60) is None


def test_an_expired_lease_is_retaken_and_the_old_worker_can_no_longer_write(
    database: Database,
) -> None:
    queue = _queue(database)
    queue.enqueue("generic", "d-1", "c-1", {"text": "hi"})
    dead = queue.take("dead", lease_s=0.2)
    assert dead is not None
    deadline = time.monotonic() + 30
    while (alive := queue.take("alive", lease_s=60)) is None:
        assert time.monotonic() < deadline, "never retaken"
        time.sleep(0.05)
    assert alive.id == dead.id
    assert not queue.renew(dead, lease_s=60) and not queue.finish(dead, "delivered")
    assert queue.save_answer(alive, {"reply": {}, "done": []})
    assert queue.finish(alive, "delivered")


def test_a_conversations_turns_wait_for_the_earlier_ones_answers(database: Database) -> None:
    queue = _queue(database)
    queue.enqueue("generic", "d-1", "c-1", {})
    queue.enqueue("generic", "d-2", "c-1", {})
    queue.enqueue("chatwoot", "d-3", "c-2", {})
    first = queue.take("a", lease_s=60)
    other = queue.take("b", lease_s=60)
    assert (first.delivery_id, other.delivery_id) == ("d-1", "d-3")  # type: ignore[union-attr]
    assert queue.take("c", lease_s=60) is None, "d-2 waits for d-1's answer"
    assert first is not None and queue.save_answer(first, {"reply": {}, "done": []})
    second = queue.take("c", lease_s=60)
    assert second is not None and second.delivery_id == "d-2"


def test_failures_follow_the_schedule_then_dead_letter_and_retry_requeues(
    database: Database,
) -> None:
    queue = _queue(database)
    queue.enqueue("generic", "d-1", "c-1", {})
    job = queue.take("a", lease_s=60)
    assert job is not None and queue.fail(job, "503", [3600.0, 3600.0]) == "pending"
    row = queue.get("generic", "d-1")
    assert row is not None and row.attempts == 1 and row.error == "503"
    assert row.run_after is not None
    assert row.run_after.replace(tzinfo=UTC) > datetime.now(UTC), "not before its time"
    assert queue.take("a", lease_s=60) is None
    assert queue.fail(job, "stale", [0.0]) == "lost", "no longer held: nothing changes"
    assert queue.get("generic", "d-1").attempts == 1  # type: ignore[union-attr]
    queue.retry([row.id])
    job = queue.take("a", lease_s=60)
    assert job is not None and job.attempts == 0
    assert queue.fail(job, "404", [1.0], permanent=True) == "failed"
    assert queue.stats().failed == 1
    assert queue.retry(failed=True) == 1
    job = queue.take("a", lease_s=60)
    assert job is not None and queue.fail(job, "again", []) == "failed", "no retries left"


def test_concurrent_workers_take_each_delivery_exactly_once(database: Database) -> None:
    queue = _queue(database)
    for number in range(40):
        queue.enqueue("generic", f"d-{number}", f"c-{number}", {})
    taken: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work(name: str) -> None:
        start.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if len(taken) >= 40:
                    return
            job = queue.take(name, lease_s=60)
            if job is None:
                time.sleep(0.01)
                continue
            with lock:
                taken.append(job.delivery_id)
            queue.save_answer(job, {"reply": {}, "done": []})
            queue.finish(job, "delivered")

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == sorted(f"d-{n}" for n in range(40))


def test_shutdown_releases_what_a_worker_holds(database: Database) -> None:
    queue = _queue(database)
    queue.enqueue("generic", "d-1", "c-1", {})
    assert queue.take("leaving", lease_s=3600) is not None
    assert queue.release_worker("leaving") == 1
    job = queue.take("staying", lease_s=60)
    assert job is not None and job.delivery_id == "d-1"
    stats = queue.stats()
    assert (stats.pending, stats.running, stats.failed) == (0, 1, 0)
    assert stats.oldest_age_s >= 0


def test_a_restarted_process_takes_back_at_once_what_dead_ones_of_its_host_held(
    database: Database,
) -> None:
    queue = _queue(database)
    for number in range(3):
        queue.enqueue("generic", f"d-{number}", f"c-{number}", {})
    queue.take("web-1:4242:aa", lease_s=3600)  # a dead process of this host
    queue.take("web-1:77:bb", lease_s=3600)  # a live one
    queue.take("web-2:4242:cc", lease_s=3600)  # another host: only its lease can tell
    assert queue.release_dead("web-1", alive=lambda pid: pid == 77) == 1
    job = queue.take("web-1:99:dd", lease_s=60)
    assert job is not None and job.delivery_id == "d-0"
    assert queue.take("web-1:99:dd", lease_s=60) is None
