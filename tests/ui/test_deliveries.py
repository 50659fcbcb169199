"""Delivery claims on both SQL backends: the database's unique constraint decides, even under a
race."""

from __future__ import annotations

import threading

import pytest

from assistant.core.db import Database
from ui.deliveries import DeliveryLedger

pytestmark = pytest.mark.unit


def test_claim_once_finish_release(database: Database) -> None:
    ledger = DeliveryLedger(database.session)
    assert ledger.claim("generic", "d-1", "c-1")
    assert not ledger.claim("generic", "d-1", "c-1")
    assert ledger.claim("chatwoot", "d-1", "c-1"), "sources are separate namespaces"
    ledger.finish("generic", "d-1", "answered")
    assert ledger.status("generic", "d-1") == "answered"
    ledger.release("generic", "d-1")
    assert ledger.status("generic", "d-1") is None
    assert ledger.claim("generic", "d-1", "c-1")


def test_concurrent_claims_of_one_delivery_let_exactly_one_through(database: Database) -> None:
    ledger = DeliveryLedger(database.session)
    start = threading.Barrier(8)
    wins: list[bool] = []

    def claim() -> None:
        start.wait()
        wins.append(ledger.claim("generic", "d-race", "c-1"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(wins) == [False] * 7 + [True]
