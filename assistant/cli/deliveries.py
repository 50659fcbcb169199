"""`assistant deliveries`: list webhook deliveries and queue dead letters again."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant.cli.app import App, friendly_errors, pass_app

STATUSES = ("pending", "running", "answered", "delivered", "handed_off", "failed")


@click.group()
def deliveries() -> None:
    """Webhook deliveries: the durable queue every `assistant serve` process works on."""


def _queue(app: App) -> Any:
    import ui.records  # noqa: F401  (register the table)
    from ui.jobs import DeliveryQueue

    with friendly_errors():
        return DeliveryQueue(app.components.database.session)


@deliveries.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries with this status.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per delivery.")
@pass_app
def list_deliveries(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """The newest deliveries first: id, status, tries, source, delivery id, last error."""
    rows = _queue(app).listing(status, limit)
    for row in rows:
        item = {
            "id": row.id,
            "source": row.source,
            "delivery_id": row.delivery_id,
            "conversation_id": row.conversation_id,
            "status": row.status,
            "attempts": row.attempts,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
            "run_after": row.run_after.isoformat() if row.run_after else None,
            "error": row.error,
        }
        if as_json:
            click.echo(json.dumps(item, ensure_ascii=False))
        else:
            click.echo(
                f"{row.id:7d}  {row.status:10s}  {row.attempts:3d}  {row.source:8s}  "
                f"{row.delivery_id}  {row.error or ''}".rstrip()
            )
    if not as_json:
        click.echo(f"{len(rows)} delivery(ies)", err=True)


@deliveries.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Every dead letter (status failed).")
@pass_app
def retry(app: App, ids: tuple[int, ...], failed: bool) -> None:
    """Queue deliveries again from their first try; a running server sends them."""
    if not ids and not failed:
        raise click.UsageError("name delivery ids, or --failed")
    count = _queue(app).retry(ids, failed=failed)
    click.echo(f"{count} delivery(ies) queued again")
