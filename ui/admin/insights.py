"""The Insights tab: the report of `dialog.insights` (figures, per-day and per-channel plots,
handoff reasons) and the knowledge gaps, each downloadable as CSV."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

import dialog.insights as insights
from dialog.insights.plots import channel_figure, daily_figure
from dialog.insights.report import Gap, Report
from ui.admin.desk import AdminDesk

PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "all": None}
GAP_COLUMNS = ["#", "questions", "examples", "why", "closest documents"]


@dataclass(frozen=True)
class Shown:
    """What the tab shows for one report."""

    headline: str
    daily: Figure
    channels: Figure
    gaps: list[list[Any]]
    report_csv: str
    gaps_csv: str


def since_of(period: str, today: date | None = None) -> date | None:
    """A period's first day (`7 days`: the last seven days and today); `all`: None."""
    days = PERIODS.get(period)
    if days is None:
        return None
    return (today or datetime.now(UTC).date()) - timedelta(days=days)


def headline_markdown(report: Report) -> str:
    """The report's main figures as a table, then the handoff reasons."""
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in insights.headline(report)]
    if report.handoff_reasons:
        lines += ["", "**Handoff reasons:** "]
        lines[-1] += ", ".join(f"{reason} {n}" for reason, n in report.handoff_reasons.items())
    return "\n".join(lines)


def gap_rows(gaps: list[Gap]) -> list[list[Any]]:
    """One row per knowledge gap, largest first: what the help-centre writers should write."""
    return [
        [
            rank,
            gap.size,
            " | ".join(gap.examples),
            ", ".join(f"{reason} {n}" for reason, n in gap.reasons.items()),
            " | ".join(str(d.get("title") or d.get("source")) for d in gap.documents),
        ]
        for rank, gap in enumerate(gaps, start=1)
    ]


class InsightsAdmin:
    """Handlers of the Insights tab.

    >>> shown = InsightsAdmin(AdminDesk(runtime)).report("30 days")
    >>> shown.headline.splitlines()[2]
    """

    def __init__(self, desk: AdminDesk) -> None:
        self.desk = desk
        self._files: Path | None = None

    def build(self, since: date | None, gaps: bool = True) -> Report:
        """The report from `since` on, with its knowledge gaps when asked for and the embedder is
        at hand (grouping loads the embedding model: the slow part on a long history)."""
        parts = self.desk.components
        report = insights.build_report(parts.database.engine, since)
        embedder = getattr(parts, "embedder", None)
        if embedder is None or not gaps:
            return report
        redactor = insights.Redactor.from_setting(parts.settings.redact)
        found = insights.find_gaps(
            parts.database.engine,
            embedder.embed,
            insights.closest_documents(parts.knowledge),
            since,
            redact=redactor.text if redactor else None,
        )
        return dataclasses.replace(report, gaps=found)

    def report(self, period: str, gaps: bool = True) -> Shown:
        report = self.build(since_of(period), gaps)
        return Shown(
            headline_markdown(report),
            daily_figure(report),
            channel_figure(report),
            gap_rows(report.gaps),
            insights.report_csv(report),
            insights.gaps_csv(report.gaps),
        )

    def show(self, period: str, gaps: bool = True) -> tuple[Any, ...]:
        """The tab's outputs: figures, the two plots, the gaps table and the two CSV files."""
        shown = self.report(period, gaps)
        folder = self._fresh_folder()
        report_file = folder / "insights-report.csv"
        gaps_file = folder / "knowledge-gaps.csv"
        report_file.write_text(shown.report_csv, encoding="utf-8")
        gaps_file.write_text(shown.gaps_csv, encoding="utf-8")
        return (
            shown.headline,
            shown.daily,
            shown.channels,
            shown.gaps,
            str(report_file),
            str(gaps_file),
        )

    def _fresh_folder(self) -> Path:
        """A new folder for this build's CSV files; the previous build's (copied by Gradio into
        its cache when it was shown) is removed."""
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
        self._files = Path(tempfile.mkdtemp(prefix="assistant-insights-"))
        return self._files


__all__ = ["GAP_COLUMNS", "PERIODS", "InsightsAdmin", "Shown", "gap_rows", "headline_markdown"]
