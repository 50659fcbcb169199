"""SQL rows of the insights: the counts of purged conversations, kept per day, channel and
metric."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant_core.db import Base


class RollupRow(Base):
    """What the report counted for conversations that retention has since deleted.

    `metric` and `key` are those of `dialog.insights.report.Counts` (e.g. "handoffs" and the
    reason); the report adds these to what it counts in the live events.
    """

    __tablename__ = "insights_rollup"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
