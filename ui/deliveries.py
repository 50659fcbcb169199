"""Each webhook delivery is answered once: claimed by inserting a row that a unique constraint
guards."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ui.records import DeliveryRow


class DeliveryLedger:
    """Claim, finish or release deliveries; works across processes because the database decides.

    >>> ledger = DeliveryLedger(db.session)
    >>> ledger.claim("generic", "d-1", "c-1"), ledger.claim("generic", "d-1", "c-1")
    (True, False)
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def claim(self, source: str, delivery_id: str, conversation_id: str) -> bool:
        """True for the first claim of this delivery; False for every later one, even concurrent."""
        now = datetime.now(UTC)
        row = DeliveryRow(
            source=source,
            delivery_id=delivery_id,
            conversation_id=conversation_id,
            status="running",
            created_at=now,
            updated_at=now,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    def finish(self, source: str, delivery_id: str, status: str) -> None:
        """Record how the delivery ended (answered, delivered, undelivered)."""
        with self._sessions.begin() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.source == source, DeliveryRow.delivery_id == delivery_id)
                .values(status=status, updated_at=datetime.now(UTC))
            )

    def release(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose turn failed before any answer, so the sender's retry can be
        answered."""
        with self._sessions.begin() as session:
            session.execute(
                delete(DeliveryRow).where(
                    DeliveryRow.source == source, DeliveryRow.delivery_id == delivery_id
                )
            )

    def status(self, source: str, delivery_id: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(
                select(DeliveryRow.status).where(
                    DeliveryRow.source == source, DeliveryRow.delivery_id == delivery_id
                )
            )
