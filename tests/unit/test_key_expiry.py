"""`assistant keys create --expires`: each form it reads, the clear error for anything else, and
migration 0010 that gives keys their nullable expiry (up and down, on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import click
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

from assistant.cli import main
from assistant.cli.keys import Expiry
from assistant_core.db import MIGRATIONS, make_engine
from ui.access_keys import parse_expiry

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("90d", NOW + timedelta(days=90)),
        ("12h", NOW + timedelta(hours=12)),
        ("30m", NOW + timedelta(minutes=30)),
        ("45s", NOW + timedelta(seconds=45)),
        (" 1.5H ", NOW + timedelta(minutes=90)),
        ("2026-12-31", datetime(2026, 12, 31, tzinfo=UTC)),
        ("2026-12-31T18:30", datetime(2026, 12, 31, 18, 30, tzinfo=UTC)),
        ("2026-12-31T18:30:00Z", datetime(2026, 12, 31, 18, 30, tzinfo=UTC)),
        ("2026-12-31T18:30+02:00", datetime(2026, 12, 31, 16, 30, tzinfo=UTC)),
    ],
)
def test_each_expiry_form(given: str, expected: datetime) -> None:
    when = parse_expiry(given, now=NOW)
    assert when == expected and when.tzinfo is UTC


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "neither a duration"),
        ("soon", "neither a duration"),
        ("-1d", "neither a duration"),
        ("1d,2h", "neither a duration"),
        ("90", "needs a unit"),
        ("0d", "not a positive duration"),
        ("99999999999d", "too far in the future"),
        ("2026-02-28", "not in the future"),
        ("2026-03-01T12:00Z", "not in the future"),
        ("2026-03-01T13:00+02:00", "not in the future"),
        ("2026-13-01", "neither a duration"),
    ],
)
def test_a_bad_expiry_says_why(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_expiry(given, now=NOW)


def test_the_option_type_turns_errors_into_bad_parameter() -> None:
    later = Expiry().convert("2999-01-01", None, None)
    assert later == datetime(2999, 1, 1, tzinfo=UTC)
    assert Expiry().convert(later, None, None) is later
    in_a_day = Expiry().convert("1d", None, None)
    assert timedelta(hours=23) < in_a_day - datetime.now(UTC) <= timedelta(days=1)
    with pytest.raises(click.BadParameter, match="neither a duration"):
        Expiry().convert("next week", None, None)
    with pytest.raises(click.BadParameter, match="not in the future"):
        Expiry().convert("2001-01-01", None, None)


def test_the_command_refuses_a_bad_expiry_before_touching_the_database() -> None:
    done = CliRunner().invoke(
        main, ["keys", "create", "--role", "agent", "--name", "x", "--expires", "fortnight"]
    )
    assert done.exit_code == 2
    assert "Invalid value for '--expires'" in done.output and "'fortnight'" in done.output


def alembic(engine: Engine, action: str, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


def test_0010_follows_the_single_head() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS))
    expiry = scripts.get_revision("0010")
    assert expiry is not None and expiry.down_revision == "0009"
    assert len(scripts.get_heads()) == 1
    assert "0010" in {r.revision for r in scripts.walk_revisions()}


def test_0010_adds_a_nullable_expiry_and_keeps_existing_keys(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        alembic(engine, "upgrade", "0009")
        assert "expires_at" not in {c["name"] for c in inspect(engine).get_columns("ui_api_keys")}
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO ui_api_keys (id, name, role, digest, created_at) "
                    "VALUES ('aaaaaaaaaaaa', 'old', 'admin', :digest, :at)"
                ),
                {"digest": hashlib.sha256(b"x").hexdigest(), "at": NOW},
            )
        alembic(engine, "upgrade", "heads")
        columns = {c["name"]: c for c in inspect(engine).get_columns("ui_api_keys")}
        assert columns["expires_at"]["nullable"]
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT name, expires_at FROM ui_api_keys")).all()
        assert [tuple(row) for row in kept] == [("old", None)]
        alembic(engine, "downgrade", "0009")
        assert "expires_at" not in {c["name"] for c in inspect(engine).get_columns("ui_api_keys")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM ui_api_keys")).scalars().all() == [
                "old"
            ]
        alembic(engine, "upgrade", "heads")
    finally:
        engine.dispose()
