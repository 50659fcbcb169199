"""The report for people and programs: rich tables for the terminal, JSON, and CSV (the figures,
and the knowledge gaps one row each for the help-centre writers)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from dialog.insights.report import Gap, Report, Slice

_SLICE_COLUMNS = (
    "conversations",
    "turns",
    "handed_off",
    "answers",
    "abstained",
    "changed_by_check",
    "thumbs_up",
    "thumbs_down",
)


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON types (dates as ISO strings)."""
    return _plain(asdict(report))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def headline(report: Report) -> list[tuple[str, str]]:
    """The report's main figures as (label, value) lines."""
    latency = report.latency
    return [
        ("since", report.since.isoformat() if report.since else "the beginning"),
        ("conversations", str(report.conversations)),
        ("turns (customer messages)", str(report.turns)),
        (
            "resolved without a person",
            f"{report.resolved_without_person} ({report.resolution_rate:.1%})",
        ),
        ("handed off", f"{report.handed_off} ({report.handoff_rate:.1%})"),
        ("help-centre questions (answered or abstained)", str(report.answers)),
        ("abstained (not in the help centre)", str(report.abstentions)),
        ("changed by the grounding check", str(report.changed_by_check)),
        ("thumbs up / down", f"{report.thumbs_up} / {report.thumbs_down}"),
        ("answers that failed (LM errors)", str(report.failed)),
        (
            "answer latency p50 / p95",
            f"{_ms(latency.p50_ms)} / {_ms(latency.p95_ms)} over {latency.answers} answers",
        ),
        ("purged conversations included", str(report.purged_conversations)),
    ]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def print_report(report: Report, console: Console) -> None:
    """Rich tables: the headline, per channel, per day, handoff reasons, knowledge gaps."""
    table = Table(title="Insights", show_header=False)
    for label, value in headline(report):
        table.add_row(label, value)
    console.print(table)
    for title, slices in (("Per channel", report.by_channel), ("Per day", report.by_day)):
        if slices:
            console.print(_slice_table(title, slices))
    if report.handoff_reasons:
        reasons = Table("handoff reason", "count", title="Handoff reasons")
        for reason, count in report.handoff_reasons.items():
            reasons.add_row(reason, str(count))
        console.print(reasons)
    if report.gaps:
        console.print(_gap_table(report.gaps))


def _slice_table(title: str, slices: list[Slice]) -> Table:
    table = Table("", *(c.replace("_", " ") for c in _SLICE_COLUMNS), title=title)
    for s in slices:
        table.add_row(s.name, *(str(getattr(s, c)) for c in _SLICE_COLUMNS))
    return table


def _gap_table(gaps: list[Gap]) -> Table:
    table = Table("#", "size", "example questions", "why", "closest documents", title="Gaps")
    for rank, gap in enumerate(gaps, start=1):
        table.add_row(
            str(rank),
            str(gap.size),
            "\n".join(gap.examples),
            _reasons(gap),
            "\n".join(_document(d) for d in gap.documents),
        )
    return table


def _reasons(gap: Gap) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in gap.reasons.items())


def _document(document: dict[str, Any]) -> str:
    return f"{document.get('title') or document.get('source')} ({document.get('score')})"


def report_csv(report: Report) -> str:
    """Every figure as one `section,name,metric,value` row (total, channel, day, reason, gap)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "name", "metric", "value"])
    figures = report_json(report)
    for metric, value in figures.items():
        if not isinstance(value, dict | list):
            writer.writerow(["total", "", metric, "" if value is None else value])
    for metric, value in figures["latency"].items():
        writer.writerow(["latency", "", metric, "" if value is None else value])
    for section, slices in (("channel", report.by_channel), ("day", report.by_day)):
        for s in slices:
            writer.writerows([section, s.name, c, getattr(s, c)] for c in _SLICE_COLUMNS)
    for section, counts in (("handoff_reason", report.handoff_reasons), ("check", report.checks)):
        writer.writerows([section, name, "count", n] for name, n in counts.items())
    for rank, gap in enumerate(report.gaps, start=1):
        writer.writerow(["gap", rank, "size", gap.size])
        writer.writerow(["gap", rank, "examples", " | ".join(gap.examples)])
        writer.writerow(["gap", rank, "documents", " | ".join(map(_document, gap.documents))])
    return out.getvalue()


def gaps_csv(gaps: list[Gap]) -> str:
    """One row per knowledge gap, largest first: the help-centre writers' to-do list."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["rank", "size", "abstained", "thumbs_down", "handoff", "examples", "closest_documents"]
    )
    for rank, gap in enumerate(gaps, start=1):
        writer.writerow(
            [
                rank,
                gap.size,
                gap.reasons.get("abstained", 0),
                gap.reasons.get("thumbs_down", 0),
                gap.reasons.get("handoff", 0),
                " | ".join(gap.examples),
                " | ".join(map(_document, gap.documents)),
            ]
        )
    return out.getvalue()
