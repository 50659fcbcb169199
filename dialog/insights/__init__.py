"""Insights over the conversation history: the report, knowledge gaps, retention and redaction.

Public names for the front ends (the admin area's Insights tab) and the CLI:
`build_report` -> `Report`; `find_gaps` -> list of `Gap`; `print_report`, `report_json`,
`report_csv`, `gaps_csv`; `dialog.insights.plots` (`daily_figure`, `channel_figure`, matplotlib);
`purge_before`, `purge_expired`, `start_retention`; `Redactor`.
"""

from dialog.insights.gaps import closest_documents, find_gaps
from dialog.insights.redaction import Redactor
from dialog.insights.render import gaps_csv, headline, print_report, report_csv, report_json
from dialog.insights.report import Gap, Latency, Report, Slice, build_report
from dialog.insights.retention import (
    PurgeResult,
    RetentionSchedule,
    purge_before,
    purge_expired,
    start_retention,
)

__all__ = [
    "Gap",
    "Latency",
    "PurgeResult",
    "Redactor",
    "Report",
    "RetentionSchedule",
    "Slice",
    "build_report",
    "closest_documents",
    "find_gaps",
    "gaps_csv",
    "headline",
    "print_report",
    "purge_before",
    "purge_expired",
    "report_csv",
    "report_json",
    "start_retention",
]
