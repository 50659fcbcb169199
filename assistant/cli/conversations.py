"""`assistant conversations`: delete old conversations, their report figures kept."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time

import click

from assistant.cli.app import App, friendly_errors, pass_app


@click.group()
def conversations() -> None:
    """Manage stored conversations."""


@conversations.command()
@click.option(
    "--before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Delete conversations last active before this day (UTC, YYYY-MM-DD).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def purge(app: App, before: datetime, yes: bool) -> None:
    """Delete conversations (events, snapshots, turn tickets, webhook deliveries) idle since
    before DATE; the report keeps their counts."""
    from dialog.insights import purge_before

    cutoff = datetime.combine(date(before.year, before.month, before.day), time(), UTC)
    if not yes:
        click.confirm(
            f"Delete every conversation last active before {cutoff:%Y-%m-%d}?", abort=True
        )
    with friendly_errors():
        result = purge_before(app.components.database.engine, cutoff)
    click.echo(", ".join(f"{n} {name}" for name, n in asdict(result).items()) + " deleted")
