"""Shared fixtures: a temp data dir for every test, fakes, and both SQL backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_core.db import Database
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder

REPO = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get("ASSISTANT_TEST_MODEL_CACHE", REPO / ".cache" / "models"))
PG_SERVER = os.environ.get("ASSISTANT_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir; the converted chat model is shared across the run."""
    for name in list(os.environ):
        if (
            name.startswith("ASSISTANT_")
            and name != "ASSISTANT_TEST_MODEL_CACHE"
            and name != "ASSISTANT_TEST_PG"
        ):
            monkeypatch.delenv(name)
    target = tmp_path / "data"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(target))
    # the suite talks to the demo shop, as `make chat` does; the default is the neutral `none`
    monkeypatch.setenv("ASSISTANT_DOMAIN", "demo")
    monkeypatch.setenv("ASSISTANT_MODEL_DIR", str(MODEL_CACHE))
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return target


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings()


@pytest.fixture
def fake_model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; skip if no server answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"assistant_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as err:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server reachable at {PG_SERVER}: {err.orig}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """The URL of an empty database, SQLite or PostgreSQL, for tests that start servers on it."""
    if request.param == "sqlite":
        yield f"sqlite:///{data_dir / 'shared.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Database]:
    """Each store test runs on SQLite and on PostgreSQL."""
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    if request.param == "sqlite":
        db = Database(f"sqlite:///{data_dir / 'test.db'}")
        yield db
        db.close()
        return
    for url in _postgres_database():
        db = Database(url)
        yield db
        db.close()
