"""Insights benchmark: `assistant report` and the retention purge over a large history.

    python -m benchmarks.report [--events 1000000] [--server postgresql://postgres@127.0.0.1:5432]

Builds a synthetic history in a fresh PostgreSQL database (the schema by the real migrations,
rows by COPY): conversations of 10 events (question, answer with its grounding check, a second
question and answer, now and then a handoff, feedback), spread over 90 days and three channels.
Then times `build_report` over the whole history and over the last 7 days (best of 3), the
knowledge-gap questions query, and `purge_before` of the oldest tenth followed by the report again
(live plus rollup). Prints the figures and saves docs/bench/report.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from assistant.core.db import Database

OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "report.json"
CHANNELS = ("web", "webhook", "cli")
ACTIONS = ("passed", "passed", "passed", "extractive", "abstained")
DAYS = 90


def history_rows(conversations: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """Tab-separated COPY lines for the conversations and their events."""
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
        convs.append(f"{cid}\t{channel}\t{at.isoformat()}\t{clock.isoformat()}")
        for seq, (kind, payload, when) in enumerate(rows, start=1):
            events.append(f"{cid}\t{seq}\t{kind}\t{json.dumps(payload)}\t{when.isoformat()}")
    return convs, events


def load(url: str, conversations: int) -> float:
    """COPY the history in; returns the seconds it took."""
    import psycopg

    convs, events = history_rows(conversations)
    began = time.perf_counter()
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        for table, columns, lines in (
            ("conversations", "id, channel, created_at, updated_at", convs),
            ("events", "conversation_id, seq, type, payload, created_at", events),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write("\n".join(lines) + "\n")
        cursor.execute("ANALYZE")
    return time.perf_counter() - began


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    import dialog.insights as insights
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    name = f"assistant_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        args.server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{args.server}/{name}"
    try:
        database = Database(url)
        conversations = args.events // 10
        loaded = load(url, conversations)
        engine = database.engine
        full_s, report = best_of(3, lambda: insights.build_report(engine))
        week = datetime.now(UTC).date() - timedelta(days=7)
        week_s, _ = best_of(3, lambda: insights.build_report(engine, since=week))
        gaps_s, questions = best_of(1, lambda: insights.gaps.bad_questions(engine, week))
        cutoff = datetime.now(UTC) - timedelta(days=DAYS * 0.9)
        purge_s, purged = best_of(1, lambda: insights.purge_before(engine, cutoff))
        after_s, after = best_of(3, lambda: insights.build_report(engine))
        assert isinstance(report, insights.Report) and isinstance(after, insights.Report)
        assert after.conversations == report.conversations, "the rollup keeps the counts"
        figures = {
            "events": args.events,
            "conversations": conversations,
            "load_copy_s": round(loaded, 2),
            "report_full_history_s": round(full_s, 3),
            "report_last_7_days_s": round(week_s, 3),
            "gap_questions_last_7_days_s": round(gaps_s, 3),
            "gap_questions": len(questions),  # type: ignore[arg-type]
            "purge_oldest_tenth_s": round(purge_s, 2),
            "purged": vars(purged),
            "report_after_purge_s": round(after_s, 3),
            "latency_p50_ms": report.latency.p50_ms,
            "latency_p95_ms": report.latency.p95_ms,
            "database": "PostgreSQL " + _server_version(engine),
        }
        database.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures, indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")


def _server_version(engine: Any) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text("SHOW server_version")).scalar())


if __name__ == "__main__":
    main()
