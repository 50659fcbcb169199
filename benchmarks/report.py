"""Insights benchmark: `assistant report` and the retention purge over a large history.

    python -m benchmarks.report [--events 1000000] [--server postgresql://postgres@127.0.0.1:5432]

Builds a synthetic history in a fresh PostgreSQL database (the schema by the real migrations,
rows by COPY): conversations of 10 events (question, answer with its grounding check, a second
question and answer, now and then a handoff, feedback), spread over 90 days and three channels.
Then times `build_report` over the whole history and over the last 7 days (best of 3), the
knowledge-gap questions query, and `purge_before` of the oldest tenth followed by the report again
(live plus rollup). Prints the figures and saves them under the backend's key in
docs/bench/report.json. `--sqlite` runs the same on a SQLite file (rows inserted in one
transaction).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from assistant_core.db import Database

OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "report.json"
CHANNELS = ("web", "webhook", "cli")
ACTIONS = ("passed", "passed", "passed", "extractive", "abstained")
DAYS = 90


Row = tuple[Any, ...]


def history_rows(conversations: int, seed: int = 7) -> tuple[list[Row], list[Row]]:
    """(id, channel, created, updated) and (conversation, seq, type, payload JSON, created)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=DAYS)
    convs, events = [], []
    for n in range(conversations):
        cid = f"b{n:09d}"
        at = start + timedelta(seconds=n * DAYS * 86400 / conversations)
        channel = CHANNELS[n % 3]
        rows: list[tuple[str, dict[str, Any], datetime]] = []
        clock = at
        for question in range(2):
            rows.append(("user", {"text": f"question {question} about topic {n % 500}"}, clock))
            clock += timedelta(milliseconds=rng.randint(300, 4000))
            action = rng.choice(ACTIONS)
            rows.append(
                ("bot", {"text": "answer", "sources": [], "check": {"action": action}}, clock)
            )
            clock += timedelta(seconds=rng.randint(5, 120))
        if rng.random() < 0.15:
            rows.append(("user", {"text": "a person please"}, clock))
            rows.append(("handoff", {"reason": "the customer asked for a person"}, clock))
        if rng.random() < 0.3:
            rows.append(("feedback", {"positive": rng.random() < 0.7, "target_seq": 2}, clock))
        while len(rows) < 10:
            rows.append(("slot", {"name": "order_id", "value": "NW-1"}, clock))
        convs.append((cid, channel, at, clock))
        events.extend(
            (cid, seq, kind, json.dumps(payload), when)
            for seq, (kind, payload, when) in enumerate(rows, start=1)
        )
    return convs, events


def load(url: str, conversations: int) -> float:
    """COPY the history into PostgreSQL, or insert it in one SQLite transaction; returns the
    seconds it took."""
    convs, events = history_rows(conversations)
    began = time.perf_counter()
    if url.startswith("sqlite"):
        _insert_sqlite(url.split("///", 1)[1], convs, events)
    else:
        _copy_postgres(url, convs, events)
    return time.perf_counter() - began


def _copy_postgres(url: str, convs: list[Row], events: list[Row]) -> None:
    import psycopg

    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        for table, columns, rows in (
            ("conversations", "id, channel, created_at, updated_at", convs),
            ("events", "conversation_id, seq, type, payload, created_at", events),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute("ANALYZE")


def _insert_sqlite(path: str, convs: list[Row], events: list[Row]) -> None:
    """Timestamps as SQLAlchemy stores them on SQLite: UTC wall time, microseconds, no zone."""
    import sqlite3

    def stamp(row: Row) -> Row:
        return tuple(
            v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
            for v in row
        )

    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO conversations (id, channel, created_at, updated_at) VALUES (?, ?, ?, ?)",
            map(stamp, convs),
        )
        connection.executemany(
            "INSERT INTO events (conversation_id, seq, type, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            map(stamp, events),
        )
        connection.execute("ANALYZE")


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return min(times), result


def measure(url: str, events: int) -> dict[str, Any]:
    """Load the history into the empty database at `url` and time the insights on it."""
    import dialog.insights as insights

    database = Database(url)
    engine = database.engine
    try:
        loaded = load(url, events // 10)
        full_s, report = best_of(3, lambda: insights.build_report(engine))
        week = datetime.now(UTC).date() - timedelta(days=7)
        week_s, _ = best_of(3, lambda: insights.build_report(engine, since=week))
        gaps_s, recent = best_of(1, lambda: insights.gaps.bad_questions(engine, week))
        all_gaps_s, bounded = best_of(1, lambda: insights.gaps.bad_questions(engine))
        cutoff = datetime.now(UTC) - timedelta(days=DAYS * 0.9)
        purge_s, purged = best_of(1, lambda: insights.purge_before(engine, cutoff))
        after_s, after = best_of(3, lambda: insights.build_report(engine))
        assert isinstance(report, insights.Report) and isinstance(after, insights.Report)
        assert after.conversations == report.conversations, "the rollup keeps the counts"
        return {
            "events": events,
            "conversations": events // 10,
            "load_s": round(loaded, 2),
            "report_full_history_s": round(full_s, 3),
            "report_last_7_days_s": round(week_s, 3),
            "gap_questions_last_7_days_s": round(gaps_s, 3),
            "gap_questions_last_7_days": len(recent),  # type: ignore[arg-type]
            "gap_questions_whole_history_s": round(all_gaps_s, 3),
            "gap_questions_whole_history": len(bounded),  # type: ignore[arg-type]
            "purge_oldest_tenth_s": round(purge_s, 2),
            "purged": vars(purged),
            "report_after_purge_s": round(after_s, 3),
            "latency_p50_ms": report.latency.p50_ms,
            "latency_p95_ms": report.latency.p95_ms,
            "database": _version(engine),
        }
    finally:
        database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sqlite", action="store_true", help="SQLite in a temp dir instead.")
    args = parser.parse_args()
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            figures = measure(f"sqlite:///{folder}/bench.db", args.events)
    else:
        figures = _on_fresh_postgres(args.server, args.events)
    print(json.dumps(figures, indent=2))
    saved = json.loads(OUT.read_text()) if OUT.exists() else {}
    saved = saved if "sqlite" in saved or "postgresql" in saved else {}
    saved["sqlite" if args.sqlite else "postgresql"] = figures
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(saved, indent=2) + "\n")


def _on_fresh_postgres(server: str, events: int) -> dict[str, Any]:
    name = f"assistant_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        return measure(f"{server}/{name}", events)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _version(engine: Any) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return "SQLite " + str(connection.execute(text("SELECT sqlite_version()")).scalar())
        return "PostgreSQL " + str(connection.execute(text("SHOW server_version")).scalar())


if __name__ == "__main__":
    main()
