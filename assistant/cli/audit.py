"""`assistant audit`: the admin actions recorded (who, what, on what, when), newest first."""

from __future__ import annotations

import json

import click

from assistant.cli.app import App, friendly_errors, pass_app
from ui.access_audit import AuditLog


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="How many."
)
@pass_app
def audit(app: App, as_json: bool, limit: int) -> None:
    """List the audit trail: uploads, removals, rebuilds, hand backs, key changes, purges."""
    import ui.access_records  # noqa: F401  (register the tables)

    with friendly_errors():
        entries = AuditLog(app.components.database.session).recent(limit)
    for entry in entries:
        if as_json:
            click.echo(json.dumps(entry.as_json(), ensure_ascii=False))
        else:
            when = entry.at.isoformat(timespec="seconds")
            line = f"{when}  {entry.actor:24s}  {entry.action:18s}  {entry.target}"
            click.echo(f"{line}  {entry.detail}".rstrip())
    if not as_json:
        click.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", err=True)
