"""Servers starting together on a fresh database seed the demo orders once, and none fails."""

import json
import threading

import pytest
from sqlalchemy import delete, func, select

from assistant.demo.shop import ORDERS_FILE, OrderRow, ReturnRow, seed_orders
from assistant_core.db import Database

pytestmark = pytest.mark.unit


def _seed_together(database: Database, seeders: int) -> tuple[list[int], list[BaseException]]:
    start = threading.Barrier(seeders)
    added: list[int] = []
    errors: list[BaseException] = []

    def seed() -> None:
        start.wait()
        try:
            added.append(seed_orders(database.session))
        except BaseException as err:  # noqa: BLE001 - the test reports any failure
            errors.append(err)

    threads = [threading.Thread(target=seed) for _ in range(seeders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return added, errors


def test_concurrent_seeding_adds_the_orders_once(database: Database) -> None:
    expected = len(json.loads(ORDERS_FILE.read_text(encoding="utf-8")))
    for _ in range(5):
        with database.session.begin() as session:
            session.execute(delete(ReturnRow))
            session.execute(delete(OrderRow))
        added, errors = _seed_together(database, 4)
        assert errors == []
        assert sorted(added) == [0, 0, 0, expected]
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(OrderRow)) == expected
