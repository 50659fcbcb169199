"""SQLite writers of one process queue on a lock instead of polling in SQLite's busy handler."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from assistant_core.db import make_engine

pytestmark = pytest.mark.unit


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}", busy_timeout_s=5.0)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
    return engine


def _hold_write(engine: Engine, started: threading.Event, go_on: threading.Event) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (who) VALUES ('first')"))
        started.set()
        go_on.wait(10)


def test_a_second_writer_waits_for_the_first_instead_of_failing(engine: Engine) -> None:
    started, go_on = threading.Event(), threading.Event()
    first = threading.Thread(target=_hold_write, args=(engine, started, go_on))
    first.start()
    assert started.wait(10)
    with engine.connect() as connection:
        # SQLite alone would answer "database is locked" at once without a busy timeout
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 0  # reads pass
        threading.Timer(0.2, go_on.set).start()
        connection.execute(text("INSERT INTO t (who) VALUES ('second')"))
        connection.commit()
        connection.exec_driver_sql("PRAGMA busy_timeout=5000")
    first.join(10)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT who FROM t ORDER BY id")).scalars().all()
    assert rows == ["first", "second"]


def test_a_failed_write_opens_the_gate(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (id, who) VALUES (1, 'a')"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t (id, who) VALUES (1, 'again')"))
    done = threading.Event()

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t (id, who) VALUES (2, 'b')"))
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(3), "the gate stayed shut after a failed write"


def test_closing_a_connection_mid_write_opens_the_gate(engine: Engine) -> None:
    raw = engine.raw_connection()
    raw.cursor().execute("INSERT INTO t (who) VALUES ('abandoned')")
    raw.invalidate()  # closes the DBAPI connection without commit or rollback
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (who) VALUES ('next')"))
        assert connection.execute(text("SELECT who FROM t")).scalars().all() == ["next"]


def test_a_writer_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'slow.db'}", busy_timeout_s=0.2)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    started, go_on = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_on, args=(engine, started, go_on))
    holder.start()
    assert started.wait(10)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t DEFAULT VALUES"))
    finally:
        go_on.set()
        holder.join(10)


def _hold_on(engine: Engine, started: threading.Event, go_on: threading.Event) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t DEFAULT VALUES"))
        started.set()
        go_on.wait(10)


def test_each_file_has_its_own_gate(tmp_path: Path, engine: Engine) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}", busy_timeout_s=0.2)
    started, go_on = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write, args=(engine, started, go_on))
    holder.start()
    assert started.wait(10)
    try:
        with other.begin() as connection:  # not held up by the write on gate.db
            connection.execute(text("CREATE TABLE u (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO u DEFAULT VALUES"))
    finally:
        go_on.set()
        holder.join(10)
