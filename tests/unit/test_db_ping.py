"""PostgreSQL connections are pinged before use only after sitting idle: a dead idle connection is
replaced without the caller noticing, and a busy pool skips the round trip. The turn locks replace
a dead connection that their first statement meets."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

import assistant_core.db as db
from dialog.locking import PostgresTurnLocks

pytestmark = pytest.mark.unit


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _terminate(url: str, pid: int) -> None:
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()


def _pool_with_a_dead_connection(url: str, **options: bool) -> tuple[Engine, int]:
    """A one-connection pool whose connection the server has since terminated; and its pid."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0, **options)
    first = _pid(engine)
    _terminate(url, first)
    return engine, first


def test_an_idle_dead_connection_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, first = _pool_with_a_dead_connection(postgres_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    assert _pid(engine) != first, "the ping found it dead and a new connection served"
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, first = _pool_with_a_dead_connection(postgres_url)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # nothing counts as idle
    with pytest.raises(OperationalError):  # no ping: the statement meets the dead connection
        _pid(engine)
    assert _pid(engine) != first, "SQLAlchemy replaced the pool after the disconnect"
    engine.dispose()


def _advisory_lock_holder(url: str) -> int | None:
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect() as conn:
        pid = conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    admin.dispose()
    return None if pid is None else int(pid)


def test_a_turn_lock_connection_found_dead_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn locks' pool is not pinged on every checkout; a connection that died since its
    last turn (a database restart) is replaced when the lock's first statement finds it dead."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # no ping would catch it
    locks = PostgresTurnLocks(db.make_engine(postgres_url), max_turns=0)
    with locks.acquire("c1"):
        first = _advisory_lock_holder(postgres_url)
    assert first is not None
    _terminate(postgres_url, first)
    with locks.acquire("c1") as held:
        assert held.held
        holder = _advisory_lock_holder(postgres_url)
    assert holder is not None and holder != first
    assert _advisory_lock_holder(postgres_url) is None, "released"
    locks.engine.dispose()
