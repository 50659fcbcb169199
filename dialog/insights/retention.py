"""Retention: conversations idle for longer than `ASSISTANT_RETENTION_DAYS` are deleted (events,
snapshots, turn tickets, webhook deliveries), their report figures rolled up first, in the same
transaction, so the report still adds up.

>>> purge_before(database.engine, datetime(2026, 1, 1, tzinfo=UTC)).conversations
120
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, column, delete, exists, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from assistant_core.db import Base
from dialog.insights.records import RollupRow
from dialog.insights.report import Count, count_rows
from dialog.records import ConversationRow, EventRow, SnapshotRow, TurnTicketRow

log = logging.getLogger(__name__)

PURGE_BATCH = 500
"""Conversations deleted per transaction: bounded locks and memory whatever the backlog."""
DEFAULT_INTERVAL_S = 3600.0
_DELIVERIES = table("ui_deliveries", column("conversation_id"), column("status"))
"""The front ends' webhook deliveries (ui's table; dialog may not import ui, so named here)."""
IN_FLIGHT = ("pending", "running")
"""Delivery statuses of a message not yet answered: its conversation is not purged meanwhile."""


@dataclass(frozen=True)
class PurgeResult:
    """How many rows of each kind a purge deleted."""

    conversations: int = 0
    events: int = 0
    snapshots: int = 0
    tickets: int = 0
    deliveries: int = 0

    def __add__(self, other: PurgeResult) -> PurgeResult:
        return PurgeResult(
            self.conversations + other.conversations,
            self.events + other.events,
            self.snapshots + other.snapshots,
            self.tickets + other.tickets,
            self.deliveries + other.deliveries,
        )


def purge_before(engine: Engine, before: datetime, *, batch: int = PURGE_BATCH) -> PurgeResult:
    """Delete every conversation last active before `before`, rolling its counts up first."""
    total = PurgeResult()
    while True:
        with engine.begin() as connection:
            done = _purge_batch(connection, before, batch)
        total += done
        if done.conversations < batch:
            return total


def purge_expired(engine: Engine, retention_days: int) -> PurgeResult | None:
    """What `assistant serve` runs on its schedule: purge past the retention (None when it is 0)."""
    if retention_days <= 0:
        return None
    return purge_before(engine, datetime.now(UTC) - timedelta(days=retention_days))


def _purge_batch(connection: Connection, before: datetime, batch: int) -> PurgeResult:
    c = ConversationRow
    ids = list(
        connection.scalars(
            select(c.id)
            .where(c.updated_at < before, ~exists().where(_in_flight(c.id)))
            .order_by(c.updated_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return PurgeResult()
    add_to_rollup(connection, count_rows(connection, conversation_ids=ids))
    return PurgeResult(
        events=_delete(connection, EventRow, EventRow.conversation_id, ids),
        snapshots=_delete(connection, SnapshotRow, SnapshotRow.conversation_id, ids),
        tickets=_delete(connection, TurnTicketRow, TurnTicketRow.conversation_id, ids),
        deliveries=_delete(connection, _DELIVERIES, _DELIVERIES.c.conversation_id, ids),
        conversations=_delete(connection, c, c.id, ids),
    )


def _in_flight(conversation_id: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    d = _DELIVERIES.c
    return and_(d.conversation_id == conversation_id, d.status.in_(IN_FLIGHT))


def _delete(
    connection: Connection,
    target: TableClause | type[Base],
    key: ColumnElement[str] | InstrumentedAttribute[str],
    ids: Sequence[str],
) -> int:
    return connection.execute(delete(target).where(key.in_(ids))).rowcount


def add_to_rollup(connection: Connection, counts: Sequence[Count]) -> None:
    """Add counts to the rollup, summing with what a day/channel/metric/key already holds."""
    summed: defaultdict[tuple[object, ...], int] = defaultdict(int)
    for n in counts:
        summed[(n.day, n.channel, n.metric, n.key)] += n.count
    if not summed:
        return
    rows = [
        {"day": d, "channel": ch, "metric": m, "key": k, "count": n}
        for (d, ch, m, k), n in summed.items()
    ]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RollupRow)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel", "metric", "key"],
        set_={"count": RollupRow.count + statement.excluded["count"]},
    )
    connection.execute(statement, rows)


class RetentionSchedule:
    """Purges past the retention now and every `interval_s`, in a daemon thread of the server.

    >>> schedule = RetentionSchedule(database.engine, retention_days=30).start()
    >>> schedule.stop()
    """

    def __init__(
        self, engine: Engine, retention_days: int, *, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RetentionSchedule:
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        self.run_once()
        while not self._stop.wait(self.interval_s):
            self.run_once()

    def run_once(self) -> PurgeResult | None:
        """One purge; a failure is logged and left for the next run (a server never dies of it)."""
        try:
            result = purge_expired(self.engine, self.retention_days)
        except Exception:  # noqa: BLE001 - the schedule outlives a failed run
            log.exception("retention purge failed")
            return None
        finally:
            self.runs += 1
        if result and result.conversations:
            log.info("retention: purged %s", result)
        return result

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def start_retention(engine: Engine, retention_days: int) -> RetentionSchedule | None:
    """The schedule `assistant serve` starts when ASSISTANT_RETENTION_DAYS is set (else None)."""
    return RetentionSchedule(engine, retention_days).start() if retention_days > 0 else None
