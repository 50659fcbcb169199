"""`assistant report` and `assistant conversations purge` through click's CliRunner."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from assistant.cli.report import parse_since
from assistant_core.db import Database
from assistant_core.settings import Settings
from tests.dialog.conftest import ShopFactory
from tests.dialog.insights_history import NEW_DAY, build_history
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.unit


@pytest.fixture
def history_db(settings: Settings, shop: ShopFactory) -> Database:
    import dialog.records  # noqa: F401

    database = Database(settings.database_url)
    build_history(database, shop)
    return database


def run(*args: str) -> dict[str, object] | str:
    app = App(overrides={"embedder": HashingEmbedder()})
    result = CliRunner().invoke(main, list(args), obj=app)
    app.close()
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else result.output


def test_since_takes_days_weeks_or_a_date() -> None:
    today = date(2026, 12, 2)
    assert parse_since("7d", today) == date(2026, 11, 25)
    assert parse_since("2w", today) == date(2026, 11, 18)
    assert parse_since("2026-11-01", today) == date(2026, 11, 1)
    assert parse_since(None, today) is None


def test_report_json_and_csv(history_db: Database, tmp_path: Path) -> None:
    figures = run("report", "--json", "--no-gaps")
    assert isinstance(figures, dict)
    assert figures["conversations"] == 8 and figures["handed_off"] == 3
    later = run("report", "--json", "--no-gaps", "--since", NEW_DAY.isoformat())
    assert isinstance(later, dict) and later["conversations"] == 6
    table = run("report", "--csv", "--no-gaps")
    assert isinstance(table, str) and "total,,conversations,8" in table.splitlines()
    gaps = tmp_path / "gaps.csv"
    text = run("report", "--gaps-csv", str(gaps))
    assert isinstance(text, str) and "Gaps" in text and "resolved without a person" in text
    assert gaps.read_text().splitlines()[0].startswith("rank,size")
    assert len(gaps.read_text().splitlines()) > 1


def test_bad_since_is_a_usage_error(history_db: Database) -> None:
    result = CliRunner().invoke(main, ["report", "--since", "last week", "--no-gaps"], obj=App())
    assert result.exit_code == 2 and "--since" in result.output


def test_purge_command_deletes_and_the_report_adds_up(history_db: Database) -> None:
    output = run("conversations", "purge", "--before", "2026-11-21", "--yes")
    assert isinstance(output, str) and output.startswith("2 conversations")
    figures = run("report", "--json", "--no-gaps")
    assert isinstance(figures, dict)
    assert figures["conversations"] == 8 and figures["purged_conversations"] == 2
    assert figures["thumbs_down"] == 1  # c2's, rolled up before it was deleted
