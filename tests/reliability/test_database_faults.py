"""The database locked or unreachable for a moment: bounded wait, then a clear 503; nothing
half-written."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.events import BotUttered, UserUttered
from tests.conftest import PG_SERVER
from tests.fakes import FakeChatModel
from tests.reliability.test_openapi_fuzz import LOYALTY
from tests.ui.conftest import ApiClient, scoped, serving, write_docs
from ui.server import create_app

pytestmark = pytest.mark.integration
QUESTION = "How long does the blender warranty last?"


def _parts(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Components:
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", database_url)
    monkeypatch.setenv("ASSISTANT_DB_BUSY_TIMEOUT_S", "1")
    parts = Components(
        Settings(), {"chat_model": FakeChatModel(default=LOYALTY), "embedder": _embedder()}
    )
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    return parts


def _embedder() -> object:
    from tests.fakes import HashingEmbedder

    return HashingEmbedder()


def _talk(parts: Components, cid: str) -> list[type]:
    return [type(e) for e in parts.store.events(cid) if isinstance(e, UserUttered | BotUttered)]


def test_sqlite_locked_gives_503_then_recovers(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_dir / "locked.db"
    parts = _parts(f"sqlite:///{path}", tmp_path, monkeypatch)
    with serving(create_app(parts, web=False)) as base, ApiClient(base) as api:
        assert (
            api.post(
                "/api/v1/messages", json={"conversation_id": "c1", "text": QUESTION}
            ).status_code
            == 200
        )
        blocker = sqlite3.connect(path, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        locked = api.post(
            "/api/v1/messages", json={"conversation_id": "c1", "text": QUESTION}, timeout=60
        )
        waited = time.monotonic() - started
        blocker.rollback()
        blocker.close()
        assert locked.status_code == 503 and "try again" in locked.json()["detail"]
        assert locked.headers["Retry-After"] == "5"
        assert 0.9 <= waited < 30, "the wait is bounded"
        assert (
            api.post(
                "/api/v1/messages", json={"conversation_id": "c1", "text": QUESTION}
            ).status_code
            == 200
        )
    talk = _talk(parts, scoped("c1"))
    assert talk.count(BotUttered) == 2 and talk[-2:] == [UserUttered, BotUttered], (
        "no half-written turn is visible"
    )
    parts.close()


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[tuple[str, str]]:
    yield postgres_url, postgres_url.rsplit("/", 1)[1]


def _set_connections(name: str, allowed: bool) -> None:
    admin = create_engine(
        f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(
            text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        )
        if not allowed:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
    admin.dispose()


def test_postgres_unreachable_gives_503_then_recovers(
    pg_database: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, name = pg_database
    parts = _parts(url, tmp_path, monkeypatch)
    with serving(create_app(parts, web=False)) as base, ApiClient(base) as api:
        assert (
            api.post(
                "/api/v1/messages", json={"conversation_id": "c1", "text": QUESTION}
            ).status_code
            == 200
        )
        _set_connections(name, allowed=False)
        try:
            down = api.post(
                "/api/v1/messages",
                json={"conversation_id": "c1", "text": QUESTION},
                timeout=60,
            )
            assert down.status_code == 503 and "database is unavailable" in down.json()["detail"]
        finally:
            _set_connections(name, allowed=True)
        back = api.post("/api/v1/messages", json={"conversation_id": "c1", "text": QUESTION})
        assert back.status_code == 200
    assert _talk(parts, scoped("c1"))[-2:] == [UserUttered, BotUttered]
    parts.close()
