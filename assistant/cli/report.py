"""`assistant report`: what the assistant resolved, where it failed, and what the help centre is
missing."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console

from assistant.cli.app import App, friendly_errors, pass_app

_RELATIVE = re.compile(r"^(\d+)\s*([dw])$")


def parse_since(value: str | None, today: date | None = None) -> date | None:
    """`7d` (the last seven days and today), `2w`, or a day `2026-11-01`; None: the whole
    history."""
    if not value:
        return None
    today = today or datetime.now(UTC).date()
    relative = _RELATIVE.match(value.strip().lower())
    if relative:
        days = int(relative.group(1)) * (7 if relative.group(2) == "w" else 1)
        return today - timedelta(days=days)
    try:
        return date.fromisoformat(value.strip())
    except ValueError as err:
        raise click.BadParameter(
            "use 7d, 2w or a day like 2026-11-01", param_hint="--since"
        ) from err


@click.command()
@click.option("--since", help="7d, 2w or a day (YYYY-MM-DD, UTC); default: the whole history.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="Print every figure as section,name,metric,value."
)
@click.option(
    "--gaps/--no-gaps",
    default=True,
    show_default=True,
    help="Group the questions answered badly by meaning (loads the embedding model).",
)
@click.option(
    "--gaps-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the knowledge gaps, one row each, to this CSV file.",
)
@pass_app
def report(
    app: App, since: str | None, as_json: bool, as_csv: bool, gaps: bool, gaps_csv: Path | None
) -> None:
    """Conversations, resolution, handoffs, abstentions, feedback, latency, knowledge gaps."""
    import dialog.insights as insights

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    start = parse_since(since)
    with friendly_errors():
        parts = app.components
        figures = insights.build_report(parts.database.engine, start)
        if gaps or gaps_csv:
            redactor = insights.Redactor.from_setting(parts.settings.redact)
            found = insights.find_gaps(
                parts.database.engine,
                parts.embedder.embed,
                insights.closest_documents(parts.knowledge),
                start,
                redact=redactor.text if redactor else None,
            )
            figures = dataclasses.replace(figures, gaps=found)
    if gaps_csv:
        gaps_csv.write_text(insights.gaps_csv(figures.gaps), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(insights.report_json(figures), ensure_ascii=False, indent=2))
    elif as_csv:
        click.echo(insights.report_csv(figures), nl=False)
    else:
        insights.print_report(figures, Console())
