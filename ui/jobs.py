"""Webhook deliveries as durable jobs in SQL: stored before they are acknowledged, then leased.

A delivery row is the job. It is inserted with its payload in the transaction that claims the
delivery id, so an acknowledged delivery survives any crash. Workers in every server process
`take` the oldest runnable row with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
writer at a time and serves one process); a worker renews its lease while it runs, so a dead
worker's row is runnable again once its lease has expired. A conversation's turns run one at a
time in the order their deliveries were stored: a row waits while an earlier row of its
conversation has no answer yet.

Statuses: `pending` (waiting, maybe until `run_after`), `running` (leased), `answered` (a reply
given in the HTTP response), `delivered`, `handed_off` (done), `failed` (dead letter: its retries
are used up, or the receiver refused it for good).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker

from assistant_core.db import autocommit, rowcount, stored_utc
from ui.records import DeliveryRow

log = logging.getLogger(__name__)

ACTIVE = ("pending", "running")
"""Statuses of a job still to be worked on."""


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    """One leased delivery, as a worker sees it."""

    id: int
    source: str
    delivery_id: str
    conversation_id: str
    payload: dict[str, Any]
    answer: dict[str, Any] | None
    attempts: int
    worker: str
    leased_at: float = field(default_factory=time.monotonic, compare=False)
    """When this process leased it (time.monotonic)."""


@dataclass(frozen=True)
class QueueStats:
    """What `/metrics` shows about the queue, read from the database (so every process agrees)."""

    pending: int
    running: int
    failed: int
    oldest_age_s: float


class DeliveryQueue:
    """Enqueue, lease, finish, retry and dead-letter deliveries; the database decides every race.

    >>> queue = DeliveryQueue(db.session)
    >>> queue.enqueue("generic", "d-1", "c-1", {"text": "hi"}).delivery_id
    'd-1'
    >>> queue.take("worker-a", lease_s=60).delivery_id
    'd-1'
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = autocommit(sessions)
        """Every method here is one statement (or reads only), so none needs a transaction."""

    def enqueue(
        self,
        source: str,
        delivery_id: str,
        conversation_id: str,
        payload: dict[str, Any],
        *,
        held_by: str | None = None,
        lease_s: float = 60.0,
    ) -> Job | None:
        """Store the delivery once (None when its id was seen before, even concurrently);
        `held_by` leases it at once to a worker that runs it in the request."""
        now = now_utc()
        # a Core insert, not the unit of work: this runs while the sender waits for its
        # acknowledgement, and a flush costs several times the statement
        row = insert(DeliveryRow).values(
            source=source,
            delivery_id=delivery_id,
            conversation_id=conversation_id,
            status="running" if held_by else "pending",
            created_at=now,
            updated_at=now,
            payload=payload,
            attempts=0,
            run_after=now,
            worker=held_by,
            lease_until=now + timedelta(seconds=lease_s) if held_by else None,
        )
        try:
            with self._sessions.begin() as session:
                job_id = session.execute(row.returning(DeliveryRow.id)).scalar_one()
        except IntegrityError:
            return None
        return Job(job_id, source, delivery_id, conversation_id, payload, None, 0, held_by or "")

    def take(self, worker: str, *, lease_s: float) -> Job | None:
        """Lease the oldest runnable delivery to `worker`, or None when there is none. One
        statement (the queue idiom `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)`),
        so on PostgreSQL it needs no transaction around it."""
        now = now_utc()
        candidate = (
            _runnable(now)
            .with_only_columns(DeliveryRow.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=DeliveryRow)
            .correlate(None)  # its own scan of the table, not the UPDATE's row
            .scalar_subquery()
        )
        lease = (
            update(DeliveryRow)
            .where(DeliveryRow.id == candidate, _is_runnable(now))
            .values(
                status="running",
                worker=worker,
                lease_until=now + timedelta(seconds=lease_s),
                updated_at=now,
            )
            .returning(
                DeliveryRow.id,
                DeliveryRow.source,
                DeliveryRow.delivery_id,
                DeliveryRow.conversation_id,
                DeliveryRow.payload,
                DeliveryRow.answer,
                DeliveryRow.attempts,
            )
        )
        try:
            with self._sessions.begin() as session:
                row = session.execute(
                    lease, execution_options={"synchronize_session": False}
                ).first()
        except OperationalError as err:  # SQLite busy: another writer; look again later
            log.info("could not take a delivery now: %s", type(err.orig).__name__)
            return None
        if row is None:
            return None
        return Job(
            row.id,
            row.source,
            row.delivery_id,
            row.conversation_id,
            dict(row.payload or {}),
            dict(row.answer) if row.answer is not None else None,
            row.attempts,
            worker,
        )

    def renew(self, job: Job, *, lease_s: float) -> bool:
        """Extend the lease; False when the worker lost it (it expired and another took it)."""
        now = now_utc()
        return self._update_held(job, lease_until=now + timedelta(seconds=lease_s), updated_at=now)

    def save_answer(self, job: Job, answer: dict[str, Any]) -> bool:
        """Keep the reply (and which sending steps are done), so a retry re-sends it."""
        return self._update_held(job, answer=answer, updated_at=now_utc())

    def finish(self, job: Job, status: str) -> bool:
        """The delivery is done (`answered`, `delivered`, `handed_off`)."""
        return self._update_held(
            job, status=status, lease_until=None, worker=None, error=None, updated_at=now_utc()
        )

    def fail(
        self, job: Job, error: str, delays: Sequence[float], *, permanent: bool = False
    ) -> str:
        """Schedule the next try after `delays[attempts]`, or dead-letter the delivery (`failed`)
        when the schedule is used up or the failure is permanent; returns the new status
        (`lost` when the worker no longer holds it)."""
        attempts = job.attempts + 1
        dead = permanent or job.attempts >= len(delays)
        now = now_utc()
        values: dict[str, Any] = {
            "status": "failed" if dead else "pending",
            "attempts": attempts,
            "error": error[:500],
            "lease_until": None,
            "worker": None,
            "updated_at": now,
        }
        if not dead:
            values["run_after"] = now + timedelta(seconds=delays[job.attempts])
        if not self._update_held(job, **values):
            return "lost"  # the lease expired and another worker has the delivery
        return str(values["status"])

    def release(self, job: Job) -> bool:
        """Give the delivery back untouched (shutdown), runnable at once by any worker."""
        return self._update_held(
            job, status="pending", lease_until=None, worker=None, run_after=now_utc()
        )

    def forget(self, job: Job) -> None:
        """Delete a delivery whose turn failed in the request, so the sender's retry is new."""
        with self._sessions.begin() as session:
            session.execute(delete(DeliveryRow).where(DeliveryRow.id == job.id))

    def release_worker(self, worker: str) -> int:
        """Every delivery the worker still holds becomes runnable by others; returns how many."""
        with self._sessions.begin() as session:
            return rowcount(
                session.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.worker == worker, DeliveryRow.status == "running")
                    .values(status="pending", lease_until=None, worker=None, run_after=now_utc()),
                    execution_options={"synchronize_session": False},
                )
            )

    def release_dead(self, host: str, alive: Callable[[int], bool]) -> int:
        """Release what dead processes of this host held (workers are named `host:pid:nonce`), so
        a restarted process takes it back at once instead of after the lease; returns how many."""
        with self._sessions() as session:
            holders = session.scalars(
                select(DeliveryRow.worker)
                .where(DeliveryRow.status == "running", DeliveryRow.worker.is_not(None))
                .distinct()
            ).all()
        released = 0
        for worker in holders:
            name, _, rest = (worker or "").partition(":")
            pid = rest.split(":", 1)[0]
            if name == host and pid.isdigit() and not alive(int(pid)):
                released += self.release_worker(str(worker))
        return released

    def retry(self, ids: Sequence[int] = (), *, failed: bool = False) -> int:
        """Queue dead letters (or any finished delivery named by id) again, from the first try."""
        condition = DeliveryRow.status == "failed" if failed else DeliveryRow.id.in_(list(ids))
        with self._sessions.begin() as session:
            return rowcount(
                session.execute(
                    update(DeliveryRow)
                    .where(
                        condition, DeliveryRow.status != "running", DeliveryRow.payload.is_not(None)
                    )
                    .values(
                        status="pending",
                        attempts=0,
                        run_after=now_utc(),
                        error=None,
                        lease_until=None,
                        worker=None,
                        updated_at=now_utc(),
                    ),
                    execution_options={"synchronize_session": False},
                )
            )

    def listing(self, status: str | None = None, limit: int = 100) -> list[DeliveryRow]:
        """The newest deliveries first, optionally of one status."""
        query = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
        if status:
            query = query.where(DeliveryRow.status == status)
        with self._sessions() as session:
            return list(session.scalars(query))

    def get(self, source: str, delivery_id: str) -> DeliveryRow | None:
        with self._sessions() as session:
            return session.scalar(
                select(DeliveryRow).where(
                    DeliveryRow.source == source, DeliveryRow.delivery_id == delivery_id
                )
            )

    def unfinished_before(self, job: Job) -> int:
        """Other deliveries of the job's conversation still to be worked on."""
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(DeliveryRow)
                    .where(
                        DeliveryRow.conversation_id == job.conversation_id,
                        DeliveryRow.id != job.id,
                        DeliveryRow.status.in_(ACTIVE),
                    )
                )
                or 0
            )

    def stats(self) -> QueueStats:
        """Counts by status and the age of the oldest delivery still to be worked on."""
        with self._sessions() as session:
            counts = dict(
                session.execute(
                    select(DeliveryRow.status, func.count())
                    .where(DeliveryRow.status.in_((*ACTIVE, "failed")))
                    .group_by(DeliveryRow.status)
                ).all()
            )
            oldest = session.scalar(
                select(func.min(DeliveryRow.created_at)).where(DeliveryRow.status.in_(ACTIVE))
            )
        age = (now_utc() - stored_utc(oldest)).total_seconds() if oldest is not None else 0.0
        return QueueStats(
            int(counts.get("pending", 0)),
            int(counts.get("running", 0)),
            int(counts.get("failed", 0)),
            max(age, 0.0),
        )

    def _update_held(self, job: Job, **values: Any) -> bool:
        """Change the row only while this worker still holds it (a compare-and-set)."""
        with self._sessions.begin() as session:
            return bool(
                rowcount(
                    session.execute(
                        update(DeliveryRow)
                        .where(
                            DeliveryRow.id == job.id,
                            DeliveryRow.worker == job.worker,
                            DeliveryRow.status == "running",
                        )
                        .values(**values),
                        execution_options={"synchronize_session": False},
                    )
                )
            )


def _is_runnable(now: datetime) -> Any:
    """Pending and due, or running under a lease that has expired."""
    return or_(
        and_(
            DeliveryRow.status == "pending",
            or_(DeliveryRow.run_after.is_(None), DeliveryRow.run_after <= now),
        ),
        and_(DeliveryRow.status == "running", DeliveryRow.lease_until < now),
    )


def _runnable(now: datetime) -> Any:
    """Runnable rows, oldest first; a row whose turn is still to run waits for every earlier row
    of its conversation to have its answer (turns in the order deliveries were stored)."""
    earlier = aliased(DeliveryRow)
    waiting = (
        select(earlier.id)
        .where(
            earlier.conversation_id == DeliveryRow.conversation_id,
            earlier.id < DeliveryRow.id,
            earlier.answer.is_(None),
            earlier.status.in_(ACTIVE),
        )
        .exists()
    )
    return (
        select(DeliveryRow)
        .where(
            _is_runnable(now),
            DeliveryRow.payload.is_not(None),
            or_(DeliveryRow.answer.is_not(None), ~waiting),
        )
        .order_by(DeliveryRow.id)
    )
