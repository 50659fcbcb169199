"""The insights report and retention, on SQLite and PostgreSQL: every figure against a count made
independently from the manager's events; a purge deletes what it says and the report still adds
up."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import column, create_engine, func, insert, select, table
from sqlalchemy.orm import Session

from assistant_core.db import Database
from dialog.insights import (
    RetentionSchedule,
    build_report,
    purge_before,
    purge_expired,
    report_csv,
    report_json,
    start_retention,
)
from dialog.insights.records import RollupRow
from dialog.insights.report import Report, Slice
from dialog.records import ConversationRow, EventRow, SnapshotRow, TurnTicketRow
from tests.dialog.conftest import ShopFactory
from tests.dialog.insights_history import (
    NEW_DAY,
    OLD_DAY,
    Expected,
    build_history,
    expected,
    latencies,
    nearest_rank_ms,
)

pytestmark = pytest.mark.unit

DELIVERIES = table(
    "ui_deliveries",
    column("source"),
    column("delivery_id"),
    column("conversation_id"),
    column("status"),
    column("created_at"),
    column("updated_at"),
)

CUTOFF = datetime.combine(OLD_DAY + timedelta(days=1), datetime.min.time(), UTC)
"""A purge cutoff the day after OLD_DAY: c1 and c2 (the old day's conversations) lie before it."""


def _add_delivery(session: Session, delivery_id: str, status: str, now: datetime) -> None:
    """A webhook delivery row for c1 (the ui's table, written here as plain SQL)."""
    session.execute(
        insert(DELIVERIES).values(
            source="generic",
            delivery_id=delivery_id,
            conversation_id="c1",
            status=status,
            created_at=now,
            updated_at=now,
        )
    )


def assert_figures(report: Report, want: Expected) -> None:
    """Every count of the report equals the independent one."""
    assert report.conversations == want.conversations
    assert report.turns == want.turns
    assert report.handed_off == want.handed_off
    assert report.resolved_without_person == want.conversations - want.handed_off
    assert report.handoff_rate == round(want.handed_off / want.conversations, 4)
    assert report.resolution_rate == round(1 - want.handed_off / want.conversations, 4)
    assert report.handoff_reasons == dict(want.reasons)
    assert report.checks == dict(want.checks)
    assert report.abstentions == want.checks["abstained"]
    assert report.changed_by_check == want.checks["extractive"]
    assert report.answers == sum(want.checks[a] for a in ("passed", "extractive", "abstained"))
    assert (report.thumbs_up, report.thumbs_down) == (want.up, want.down)
    assert report.failed == want.failed
    assert {s.name: s.conversations for s in report.by_channel} == dict(want.channels)
    assert {s.name: s.turns for s in report.by_channel} == dict(want.turns_by_channel)
    assert {s.name: s.conversations for s in report.by_day} == dict(want.days)
    assert sum(s.abstained for s in report.by_day) == want.checks["abstained"]
    assert sum(s.thumbs_down for s in report.by_channel) == want.down


def test_every_figure_matches_an_independent_count(database: Database, shop: ShopFactory) -> None:
    history = build_history(database, shop)
    report = build_report(database.engine)
    want = expected(history)
    assert_figures(report, want)
    # the script's shape, so the independent count is not vacuous either
    assert (want.conversations, want.turns, want.handed_off, want.failed) == (8, 10, 3, 1)
    assert dict(want.checks) == {"passed": 2, "extractive": 1, "abstained": 2, "none": 1}
    assert want.reasons == {
        "the customer asked for a person": 2,
        "the customer accepted the offer of a person": 1,
    }
    assert report.by_day == sorted(report.by_day, key=lambda s: s.name)
    assert report.by_day[0] == Slice(
        OLD_DAY.isoformat(),
        conversations=2,
        turns=2,
        answers=2,
        changed_by_check=1,
        thumbs_up=1,
        thumbs_down=1,
    )
    values = latencies(database)
    assert report.latency.answers == len(values) == 3
    assert report.latency.p50_ms == pytest.approx(nearest_rank_ms(values, 0.5), abs=0.1)
    assert report.latency.p95_ms == pytest.approx(nearest_rank_ms(values, 0.95), abs=0.1)


def test_since_keeps_the_later_days_only(database: Database, shop: ShopFactory) -> None:
    history = build_history(database, shop)
    report = build_report(database.engine, since=NEW_DAY)
    assert_figures(report, expected(history, since=NEW_DAY))
    assert [s.name for s in report.by_day] == [NEW_DAY.isoformat()]
    assert report.latency.answers == 1  # c5's answer; c1's and c2's are before NEW_DAY


def test_json_and_csv_carry_the_same_figures(database: Database, shop: ShopFactory) -> None:
    build_history(database, shop)
    report = build_report(database.engine)
    figures = report_json(report)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    totals = {r["metric"]: r["value"] for r in rows if r["section"] == "total"}
    assert int(totals["conversations"]) == figures["conversations"] == 8
    assert float(totals["handoff_rate"]) == figures["handoff_rate"]
    by_channel = {
        (r["name"], r["metric"]): int(r["value"]) for r in rows if r["section"] == "channel"
    }
    assert by_channel[("web", "conversations")] == 4
    assert {r["name"] for r in rows if r["section"] == "handoff_reason"} == set(
        figures["handoff_reasons"]
    )


def _count(database: Database, model: type, cid_column: object, cids: list[str]) -> int:
    with database.session() as session:
        return (
            session.scalar(
                select(func.count()).select_from(model).where(cid_column.in_(cids))  # type: ignore[attr-defined]
            )
            or 0
        )


def test_purge_deletes_old_conversations_and_the_report_still_adds_up(
    database: Database, shop: ShopFactory
) -> None:
    history = build_history(database, shop)
    before = build_report(database.engine)
    old = ["c1", "c2"]
    now = datetime.now(UTC)
    with database.session.begin() as session:
        _add_delivery(session, "d-1", "done", now)
        session.add(TurnTicketRow(conversation_id="c2", owner="gone", taken_at=now.isoformat()))
        session.add(SnapshotRow(conversation_id="c1", seq=1, state={}, created_at=now))
    kept_events = _count(database, EventRow, EventRow.conversation_id, ["c3", "c4", "c5"])

    result = purge_before(database.engine, CUTOFF, batch=1)  # one conversation per transaction

    old_events = sum(len(history.events(c)) for c in old)  # read before: the store is now empty
    assert result.conversations == 2 and result.deliveries == 1 and result.tickets == 1
    assert result.snapshots == 1 and result.events > 0
    for model, key in (
        (ConversationRow, ConversationRow.id),
        (EventRow, EventRow.conversation_id),
        (SnapshotRow, SnapshotRow.conversation_id),
        (TurnTicketRow, TurnTicketRow.conversation_id),
    ):
        assert _count(database, model, key, old) == 0, model
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(DELIVERIES)) == 0
    assert old_events == 0  # history() reads the store: nothing of c1 and c2 is left
    assert _count(database, EventRow, EventRow.conversation_id, ["c3", "c4", "c5"]) == kept_events

    after = build_report(database.engine)
    assert after.purged_conversations == 2
    for name in (
        "conversations",
        "turns",
        "handed_off",
        "handoff_reasons",
        "checks",
        "thumbs_up",
        "thumbs_down",
        "resolution_rate",
        "by_channel",
        "by_day",
    ):
        assert getattr(after, name) == getattr(before, name), name
    assert after.latency.answers == 1  # percentiles cover the live events only
    with database.session() as session:
        rolled = session.scalar(
            select(RollupRow.count).where(
                RollupRow.metric == "conversations", RollupRow.channel == "web"
            )
        )
    assert rolled == 2  # two batches summed into one row (same day, same channel)
    assert build_report(database.engine, since=NEW_DAY).conversations == 6


def test_retention_purges_only_past_the_configured_days(
    database: Database, shop: ShopFactory
) -> None:
    build_history(database, shop)
    assert purge_expired(database.engine, 0) is None
    days = (datetime.now(UTC).date() - OLD_DAY).days - 1  # the cutoff falls on OLD_DAY + 1
    result = purge_expired(database.engine, days)
    assert result is not None and result.conversations == 2
    assert build_report(database.engine).conversations == 8


def test_the_schedule_purges_at_start_and_survives_a_failed_run(
    database: Database, shop: ShopFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build_history(database, shop)
    days = (datetime.now(UTC).date() - OLD_DAY).days - 1
    schedule = RetentionSchedule(database.engine, days, interval_s=3600).start()
    schedule.stop()  # the first run happens at start, before the first wait
    assert schedule.runs == 1
    assert build_report(database.engine).purged_conversations == 2
    assert start_retention(database.engine, 0) is None

    broken = RetentionSchedule(create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"), 1)
    assert broken.run_once() is None and broken.runs == 1
    assert "retention purge failed" in caplog.text


def test_plots_draw_the_report_figures(database: Database, shop: ShopFactory) -> None:
    from dialog.insights.plots import channel_figure, daily_figure

    build_history(database, shop)
    report = build_report(database.engine)
    drawn = daily_figure(report).axes[0].lines
    lines = {line.get_label(): list(line.get_ydata()) for line in drawn}
    assert lines["conversations"] == [s.conversations for s in report.by_day] == [2, 6]
    assert lines["handed_off"] == [0, 3]
    bars = channel_figure(report).axes[0].patches
    assert sorted(int(b.get_height()) for b in bars[: len(report.by_channel)]) == [1, 3, 4]


def test_a_conversation_with_a_delivery_in_flight_is_kept(
    database: Database, shop: ShopFactory
) -> None:
    build_history(database, shop)
    now = datetime.now(UTC)
    with database.session.begin() as session:
        _add_delivery(session, "d-pending", "pending", now)
    result = purge_before(database.engine, CUTOFF)
    assert result.conversations == 1 and result.deliveries == 0
    with database.session() as session:
        assert session.get(ConversationRow, "c1") is not None
        assert session.get(ConversationRow, "c2") is None
    assert build_report(database.engine).conversations == 8
