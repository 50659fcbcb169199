"""`assistant keys`: create, list and revoke the REST API's keys (each change is audited)."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from typing import Any

import click

from assistant.cli.app import App, friendly_errors, pass_app
from ui.access import Role
from ui.access_audit import AuditLog
from ui.access_keys import KeyStore, parse_expiry

KEY_ROLES = (Role.CUSTOMER, Role.AGENT, Role.ADMIN)
"""Roles a key can carry; webhooks prove themselves by their signatures instead."""


class Expiry(click.ParamType):
    """`--expires`: a duration from now (90d, 12h, 30m) or an ISO date or date and time (UTC
    unless it names an offset), as a UTC datetime; anything else is a BadParameter."""

    name = "expiry"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_expiry(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


@click.group()
def keys() -> None:
    """API keys for the REST API: `Authorization: Bearer <key>`."""


def cli_actor() -> str:
    """Who ran the command, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:unknown"


def _stores(app: App) -> tuple[KeyStore, AuditLog]:
    import ui.access_records  # noqa: F401  (register the tables)

    with friendly_errors():
        sessions = app.components.database.session
    return KeyStore(sessions), AuditLog(sessions)


@keys.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in KEY_ROLES]),
    help="customer: its own conversations; agent: handed-off ones; admin: everything.",
)
@click.option("--name", required=True, help="What the key is for (shown by `keys list`).")
@click.option(
    "--expires",
    type=Expiry(),
    default=None,
    help="When the key stops working: 90d, 12h, 30m from now, or a UTC date or date and time "
    "(2026-12-31, 2026-12-31T18:00). Default: never.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the key as one JSON object.")
@pass_app
def create(app: App, role: str, name: str, expires: datetime | None, as_json: bool) -> None:
    """Create a key and print its secret: the only time it is shown (only a digest is stored)."""
    store, audit = _stores(app)
    created = store.create(Role(role), name, expires_at=expires)
    expires_at = created.key.expires_at.isoformat() if created.key.expires_at else None
    detail = f"role={role} name={name}" + (f" expires={expires_at}" if expires_at else "")
    audit.record(cli_actor(), "keys.create", f"key:{created.key.id}", detail)
    if as_json:
        row = {"id": created.key.id, "role": role, "key": created.secret, "expires_at": expires_at}
        click.echo(json.dumps(row))
        return
    click.echo(created.secret)
    until = f", expires {expires_at}" if expires_at else ""
    click.echo(
        f"key {created.key.id} ({role}, {name!r}{until}) created; store the line above now, "
        "it cannot be shown again",
        err=True,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@click.option("--active", is_flag=True, help="Leave revoked and expired keys out.")
@pass_app
def list_keys(app: App, as_json: bool, active: bool) -> None:
    """Every key: id, role, created, state (active, revoked, expired), expires, name (never a
    secret); expired by the database's clock, as requests are checked."""
    store, _ = _stores(app)
    found = store.list(include_revoked=not active, include_expired=not active)
    for key in found:
        revoked = key.revoked_at.isoformat() if key.revoked_at else None
        expires = key.expires_at.isoformat() if key.expires_at else None
        if as_json:
            row: dict[str, str | bool | None] = {"id": key.id, "role": key.role.value}
            row |= {"name": key.name, "created_at": key.created_at.isoformat()}
            row |= {"revoked_at": revoked, "expires_at": expires, "expired": key.expired}
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            state = f"revoked {revoked[:19]}" if revoked else "expired" if key.expired else "active"
            created = key.created_at.isoformat()[:19]
            until = expires[:19] if expires else "never"
            click.echo(
                f"{key.id}  {key.role.value:8s}  {created}  {state:27s}  {until:19s}  {key.name}"
            )
    if not as_json:
        click.echo(f"{len(found)} key(s)", err=True)


@keys.command()
@click.argument("key_id")
@pass_app
def revoke(app: App, key_id: str) -> None:
    """Revoke a key by its id: every server refuses it from its next request."""
    store, audit = _stores(app)
    if not store.revoke(key_id):
        raise click.ClickException(f"no active key with id {key_id!r} (see `assistant keys list`)")
    audit.record(cli_actor(), "keys.revoke", f"key:{key_id}")
    click.echo(f"key {key_id} revoked", err=True)
