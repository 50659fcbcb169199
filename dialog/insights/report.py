"""The insights report: conversations, turns, resolution, handoffs, abstentions, the grounding
check's changes, feedback and latency, counted in SQL per day and channel.

Every figure but latency is a sum of `Count` rows (day, channel, metric, key, count): the live
events give them through two grouped queries, and the rollup of purged conversations holds the same
rows, so a report over a purged history still adds up. Latency percentiles cannot be added up: they
cover the live events only.

>>> report = build_report(database.engine, since=date(2026, 11, 1))
>>> report.resolution_rate, report.latency.p95_ms
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Engine,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from dialog.insights.records import RollupRow
from dialog.records import ConversationRow, EventRow

AnySelect = Select[*tuple[Any, ...]]
"""A SELECT of any columns (the parts of the report's UNION ALL)."""

ANSWER_ACTIONS = ("passed", "extractive", "abstained")
"""Grounding-check actions of a question answered from the knowledge base (`Grounding.action`)."""
GENERATED_ACTIONS = ("passed", "extractive")
"""Answers the model wrote, stored when their stream ended: the ones whose latency the events
record (a fixed reply is stored with its question, in one transaction, at one time)."""
_EVENT_METRICS = {
    "user": "turns",
    "bot": "replies",
    "handoff": "handoffs",
    "feedback": "feedback",
    "answer_failed": "failed",
}


@dataclass(frozen=True)
class Count:
    """One counted figure: conversations, handed_off (by the conversation's first day); turns,
    replies[check action], handoffs[reason], feedback[up|down], failed (by the event's day)."""

    day: date
    channel: str
    metric: str
    key: str
    count: int
    rolled_up: bool = False
    """Read from the rollup of purged conversations rather than from live events."""


@dataclass(frozen=True)
class Latency:
    """From the stored question to the stored answer, for answers the model wrote (live events)."""

    answers: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


@dataclass(frozen=True)
class Slice:
    """The main figures for one day or one channel."""

    name: str
    conversations: int = 0
    turns: int = 0
    handed_off: int = 0
    answers: int = 0
    abstained: int = 0
    changed_by_check: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0


@dataclass(frozen=True)
class Gap:
    """Questions answered badly that mean the same thing: a help-centre article to write."""

    size: int
    examples: list[str]
    reasons: dict[str, int]
    documents: list[dict[str, Any]]
    """The closest existing documents: title, source, score (cosine similarity)."""


@dataclass(frozen=True)
class Report:
    """Every figure of `assistant report`, for the terminal, JSON, CSV and the admin tab."""

    since: date | None
    generated_at: datetime
    conversations: int
    turns: int
    resolved_without_person: int
    resolution_rate: float
    handed_off: int
    handoff_rate: float
    handoff_reasons: dict[str, int]
    replies: int
    answers: int
    abstentions: int
    changed_by_check: int
    checks: dict[str, int]
    thumbs_up: int
    thumbs_down: int
    failed: int
    latency: Latency
    purged_conversations: int
    """Conversations counted from the rollup: deleted by retention, their figures kept."""
    by_channel: list[Slice]
    by_day: list[Slice]
    gaps: list[Gap] = field(default_factory=list)


def build_report(engine: Engine, since: date | None = None) -> Report:
    """The report over conversations and events from `since` (a UTC day) on, live plus purged.

    Live and rolled-up counts are read by one statement (UNION ALL), so a purge committing
    meanwhile can neither count a conversation twice nor lose it.
    """
    start = datetime.combine(since, time(), UTC) if since else None
    with engine.connect() as connection:
        selects = [*_live_selects(connection, start, None), _rollup_select(since)]
        counts = _read(connection, selects)
        latency = measure_latency(connection, since=start)
    live = [n for n in counts if not n.rolled_up]
    return summarize(live, [n for n in counts if n.rolled_up], latency, since)


def summarize(
    live: Sequence[Count], rolled: Sequence[Count], latency: Latency, since: date | None
) -> Report:
    """Add live and rolled-up counts into the report's figures."""
    rows = [*live, *rolled]
    total = _totals(rows)
    conversations = total["conversations"]
    handed_off = total["handed_off"]
    checks = {key[1]: n for key, n in _keyed(rows, "replies").items() if key[1]}
    return Report(
        since=since,
        generated_at=datetime.now(UTC),
        conversations=conversations,
        turns=total["turns"],
        resolved_without_person=conversations - handed_off,
        resolution_rate=_rate(conversations - handed_off, conversations),
        handed_off=handed_off,
        handoff_rate=_rate(handed_off, conversations),
        handoff_reasons=_ranked({key[1]: n for key, n in _keyed(rows, "handoffs").items()}),
        replies=total["replies"],
        answers=sum(checks.get(a, 0) for a in ANSWER_ACTIONS),
        abstentions=checks.get("abstained", 0),
        changed_by_check=checks.get("extractive", 0),
        checks=_ranked(checks),
        thumbs_up=_keyed(rows, "feedback").get(("feedback", "up"), 0),
        thumbs_down=_keyed(rows, "feedback").get(("feedback", "down"), 0),
        failed=total["failed"],
        latency=latency,
        purged_conversations=sum(r.count for r in rolled if r.metric == "conversations"),
        by_channel=sorted(
            _slices(rows, lambda r: r.channel), key=lambda s: (-s.conversations, s.name)
        ),
        by_day=sorted(_slices(rows, lambda r: r.day.isoformat()), key=lambda s: s.name),
    )


def count_rows(
    connection: Connection,
    *,
    since: datetime | None = None,
    conversation_ids: Sequence[str] | None = None,
) -> list[Count]:
    """The counts of the live events: from `since`, or of these conversations only (to roll up)."""
    return _read(connection, _live_selects(connection, since, conversation_ids))


def _read(connection: Connection, selects: Sequence[AnySelect]) -> list[Count]:
    """Counts from (day, channel, metric, key, n, handed, rolled) rows; event types become their
    metric names; a conversations row also gives its handed_off count."""
    counts = []
    for row in connection.execute(union_all(*selects)):
        day, rolled = _as_date(row.day), bool(row.rolled)
        metric = _EVENT_METRICS.get(row.metric, row.metric)
        counts.append(Count(day, row.channel, metric, row.key or "", int(row.n), rolled))
        if row.handed:
            counts.append(Count(day, row.channel, "handed_off", "", int(row.handed), rolled))
    return counts


def _live_selects(
    connection: Connection, since: datetime | None, ids: Sequence[str] | None
) -> list[AnySelect]:
    return [_conversation_select(connection, since, ids), _event_select(connection, since, ids)]


def _conversation_select(
    connection: Connection, since: datetime | None, ids: Sequence[str] | None
) -> AnySelect:
    c, e = ConversationRow, EventRow
    handed = exists().where(e.conversation_id == c.id, e.type == "handoff")
    day = _day(c.created_at, connection)
    query = select(
        day.label("day"),
        c.channel.label("channel"),
        literal("conversations").label("metric"),
        literal("").label("key"),
        func.count().label("n"),
        func.sum(case((handed, 1), else_=0)).label("handed"),
        literal(0).label("rolled"),
    ).group_by(day, c.channel)
    if since is not None:
        query = query.where(c.created_at >= since)
    if ids is not None:
        query = query.where(c.id.in_(ids))
    return query


def _event_select(
    connection: Connection, since: datetime | None, ids: Sequence[str] | None
) -> AnySelect:
    e, c = EventRow, ConversationRow
    key = case(
        (e.type == "bot", e.payload[("check", "action")].as_string()),
        (e.type == "handoff", e.payload["reason"].as_string()),
        (e.type == "feedback", case((e.payload["positive"].as_boolean(), "up"), else_="down")),
        else_=literal(""),
    )
    day = _day(e.created_at, connection)
    query = (
        select(
            day.label("day"),
            c.channel.label("channel"),
            e.type.label("metric"),
            key.label("key"),
            func.count().label("n"),
            literal(0).label("handed"),
            literal(0).label("rolled"),
        )
        .join(c, c.id == e.conversation_id)
        .where(e.type.in_(_EVENT_METRICS))
        .group_by(day, c.channel, e.type, key)
    )
    if since is not None:
        query = query.where(e.created_at >= since)
    if ids is not None:
        query = query.where(e.conversation_id.in_(ids))
    return query


def _rollup_select(since: date | None) -> AnySelect:
    """The counts kept for purged conversations, from `since` on."""
    r = RollupRow
    query = select(
        r.day.label("day"),
        r.channel.label("channel"),
        r.metric.label("metric"),
        r.key.label("key"),
        r.count.label("n"),
        literal(0).label("handed"),
        literal(1).label("rolled"),
    )
    return query.where(r.day >= since) if since is not None else query


def measure_latency(connection: Connection, *, since: datetime | None = None) -> Latency:
    """p50/p95 (nearest rank) of question-to-answer time: PostgreSQL's percentile_disc in SQL; on
    SQLite, which has no percentile function, in Python over the one latency column."""
    e = EventRow
    by, order = e.conversation_id, e.seq
    turns = select(
        e.type,
        e.created_at,
        e.payload[("check", "action")].as_string().label("action"),
        func.lag(e.type).over(partition_by=by, order_by=order).label("prev_type"),
        func.lag(e.created_at, type_=e.created_at.type)
        .over(partition_by=by, order_by=order)
        .label("prev_at"),
    ).where(e.type.in_(("user", "bot")))
    if since is not None:
        turns = turns.where(e.created_at >= since)
    t = turns.subquery()
    answered = and_(t.c.type == "bot", t.c.prev_type == "user", t.c.action.in_(GENERATED_ACTIONS))
    if connection.dialect.name == "postgresql":
        seconds = func.extract("epoch", t.c.created_at - t.c.prev_at)
        row = connection.execute(
            select(
                func.count(),
                func.percentile_disc(0.5).within_group(seconds),
                func.percentile_disc(0.95).within_group(seconds),
            ).where(answered)
        ).one()
        return Latency(row[0], _ms(row[1]), _ms(row[2]))
    # SQLite's date functions keep milliseconds only: subtract the stored microseconds here
    pairs = connection.execute(select(t.c.prev_at, t.c.created_at).where(answered))
    values = sorted((end - start).total_seconds() for start, end in pairs)
    return Latency(len(values), _ms(nearest_rank(values, 0.5)), _ms(nearest_rank(values, 0.95)))


def nearest_rank(ordered: Sequence[float], p: float) -> float | None:
    """The value at rank ceil(p·n) of the sorted values: what percentile_disc(p) returns."""
    if not ordered:
        return None
    return ordered[max(math.ceil(p * len(ordered)), 1) - 1]


def _day(column: InstrumentedAttribute[datetime], connection: Connection) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp (SQLite stores UTC wall time as text)."""
    if connection.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds) * 1000.0, 1)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _totals(rows: Iterable[Count]) -> defaultdict[str, int]:
    total: defaultdict[str, int] = defaultdict(int)
    for row in rows:
        total[row.metric] += row.count
    return total


def _keyed(rows: Iterable[Count], metric: str) -> dict[tuple[str, str], int]:
    found: defaultdict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if row.metric == metric:
            found[(metric, row.key)] += row.count
    return dict(found)


def _slices(rows: Iterable[Count], name_of: Callable[[Count], str]) -> list[Slice]:
    """One Slice per day or channel."""
    groups: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        figures = groups[name_of(row)]
        for name in _slice_fields(row):
            figures[name] += row.count
    return [Slice(name, **figures) for name, figures in groups.items()]


def _slice_fields(row: Count) -> tuple[str, ...]:
    """The Slice fields a count adds to (none for those a Slice leaves out)."""
    if row.metric == "replies" and row.key in ANSWER_ACTIONS:
        extra = {"abstained": ("abstained",), "extractive": ("changed_by_check",)}
        return ("answers", *extra.get(row.key, ()))
    if row.metric == "feedback":
        return ("thumbs_up",) if row.key == "up" else ("thumbs_down",)
    return (row.metric,) if row.metric in ("conversations", "turns", "handed_off") else ()
