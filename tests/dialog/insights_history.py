"""A small support history built through the real dialog manager (fake LM), placed on known days,
and the report's figures counted independently from the events the manager returns."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update

from assistant_core.db import Database
from assistant_core.errors import LLMError
from dialog import events as ev
from dialog.manager import Assistant
from dialog.messages import Message
from dialog.records import ConversationRow, EventRow
from tests.dialog.conftest import ShopFactory
from tests.fakes import BreakOff, FakeChatModel

SHIPPING = "How long does standard shipping take?"
PASSED = "Standard shipping takes 3–5 business days."
INVENTED = "It is 2 days."  # a number the passages do not hold: the check quotes them instead
OLD_DAY = date(2026, 11, 20)
NEW_DAY = date(2026, 11, 28)

SCRIPT: list[tuple[str, str, date, list[str]]] = [
    ("c1", "web", OLD_DAY, [SHIPPING]),
    ("c2", "web", OLD_DAY, [SHIPPING]),
    ("c3", "cli", NEW_DAY, ["Do you sell refurbished laptops?", "yes"]),
    ("c4", "webhook", NEW_DAY, ["I want to talk to a real person"]),
    ("c5", "cli", NEW_DAY, [SHIPPING, "This is useless, get me a real person"]),
    ("c6", "cli", NEW_DAY, ["/help"]),
    ("c7", "web", NEW_DAY, ["Can I buy a refurbished laptop from you?"]),
    ("c8", "web", NEW_DAY, [SHIPPING]),
]
"""c1 answered (thumbs up), c2 changed by the grounding check (thumbs down), c3 abstained then
handed off on "yes", c4 a person at once, c5 answered then a person, c6 a command, c7 abstained,
c8 an answer the LM broke off (a failed answer, then the fallback reply)."""


@dataclass
class History:
    """The conversations as the manager returned them, with their channel and day."""

    assistant: Assistant
    channels: dict[str, str] = field(default_factory=dict)
    days: dict[str, date] = field(default_factory=dict)

    def events(self, cid: str) -> list[ev.Event]:
        return self.assistant.history(cid)


def build_history(database: Database, shop: ShopFactory) -> History:
    """Run SCRIPT through the manager, rate two answers, and move each conversation to its day."""
    broken = BreakOff("Standard shipping", LLMError("the stream broke"))
    model = FakeChatModel().enqueue(PASSED, INVENTED, PASSED, broken)
    assistant = shop(database, model, route_with_model=False)
    history = History(assistant)
    for cid, channel, day, texts in SCRIPT:
        for text in texts:
            assistant.handle(Message(text, cid, channel=channel))
        history.channels[cid], history.days[cid] = channel, day
    assistant.feedback("c1", _bot_seq(assistant, "c1"), True)
    assistant.feedback("c2", _bot_seq(assistant, "c2"), False)
    for cid, day in history.days.items():
        move(database, cid, datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10))
    return history


def _bot_seq(assistant: Assistant, cid: str) -> int:
    numbered = assistant.store.numbered_events(cid)
    return next(seq for seq, e in numbered if isinstance(e, ev.BotUttered))


def move(database: Database, cid: str, to: datetime) -> None:
    """Shift a conversation and its events so that it starts at `to` (gaps between events kept)."""
    with database.session.begin() as session:
        row = session.get(ConversationRow, cid)
        assert row is not None
        start = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        delta = to - start
        row.created_at, row.updated_at = row.created_at + delta, row.updated_at + delta
        for event in session.scalars(select(EventRow).where(EventRow.conversation_id == cid)):
            session.execute(
                update(EventRow)
                .where(EventRow.id == event.id)
                .values(created_at=event.created_at + delta)
            )


@dataclass
class Expected:
    """The figures counted from the manager's events in Python."""

    conversations: int = 0
    turns: int = 0
    handed_off: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    up: int = 0
    down: int = 0
    failed: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    days: Counter[str] = field(default_factory=Counter)
    turns_by_channel: Counter[str] = field(default_factory=Counter)


def expected(history: History, since: date | None = None) -> Expected:
    found = Expected()
    for cid, day in history.days.items():
        if since is not None and day < since:
            continue
        events = history.events(cid)
        channel = history.channels[cid]
        found.conversations += 1
        found.channels[channel] += 1
        found.days[day.isoformat()] += 1
        turns = sum(isinstance(e, ev.UserUttered) for e in events)
        found.turns += turns
        found.turns_by_channel[channel] += turns
        handoffs = [e for e in events if isinstance(e, ev.HandoffStarted)]
        found.handed_off += bool(handoffs)
        found.reasons.update(e.reason for e in handoffs)
        found.checks.update(
            e.check["action"] for e in events if isinstance(e, ev.BotUttered) and e.check
        )
        found.failed += sum(isinstance(e, ev.AnswerFailed) for e in events)
        found.up += sum(isinstance(e, ev.FeedbackGiven) and e.positive for e in events)
        found.down += sum(isinstance(e, ev.FeedbackGiven) and not e.positive for e in events)
    return found


def latencies(database: Database) -> list[float]:
    """Seconds from question to answer for the answers the model wrote, read row by row."""
    values = []
    with database.session() as session:
        rows = session.scalars(
            select(EventRow)
            .where(EventRow.type.in_(("user", "bot")))
            .order_by(EventRow.conversation_id, EventRow.seq)
        ).all()
    for before, row in zip(rows, rows[1:], strict=False):
        same = before.conversation_id == row.conversation_id
        action = row.payload.get("check", {}).get("action")
        if (
            same
            and before.type == "user"
            and row.type == "bot"
            and action in ("passed", "extractive")
        ):
            values.append((row.created_at - before.created_at).total_seconds())
    return sorted(values)


def nearest_rank_ms(values: list[float], p: float) -> float:
    return round(values[math.ceil(p * len(values)) - 1] * 1000.0, 1)
