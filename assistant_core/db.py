"""The SQL database: one declarative base, engines tuned per backend, migrations run at start-up."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from assistant_core.errors import ConfigError
from assistant_core.sqlite_gate import GatedSqliteConnection

MIGRATIONS = Path(__file__).parent / "migrations"  # scripts only: they import no app code
log = logging.getLogger(__name__)

PING_AFTER_IDLE_S = 5.0
"""A pooled PostgreSQL connection idle this long is pinged before use (see `_ping_when_idle`)."""


class Base(DeclarativeBase):
    """Declarative base shared by dialog and knowledge records, so one migration tree covers
    both."""


def stored_utc(moment: datetime) -> datetime:
    """A datetime read back from the database, aware: SQLite hands back naive ones, which were
    stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched: `Session.execute` is typed to return a plain `Result`,
    but for those statements it is a `CursorResult`, which counts them."""
    return cast(CursorResult[Any], result).rowcount


def make_engine(
    url: str | URL,
    *,
    busy_timeout_s: float = 10.0,
    connect_retries: int = 3,
    **pool: Any,
) -> Engine:
    """An engine for SQLite (WAL, busy timeout, foreign keys) or PostgreSQL (psycopg 3); `pool`
    sizes PostgreSQL's connection pool (`pool_size`, `max_overflow`). PostgreSQL connections are
    pinged before use when idle a while.

    A database that is locked or unreachable for a moment is waited for within a bound: SQLite's
    busy timeout, and a few spaced connection attempts (before any transaction, so nothing is
    half-written). Past the bound the caller gets `OperationalError`, which the HTTP front end
    answers with 503.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"timeout": busy_timeout_s, "factory": GatedSqliteConnection}
        )
        event.listen(
            engine, "connect", partial(_sqlite_pragmas, busy_ms=int(busy_timeout_s * 1000))
        )
        return engine
    engine = create_engine(parsed, connect_args={"connect_timeout": 5}, **pool)
    event.listen(engine, "do_connect", partial(_connect_with_retries, attempts=connect_retries))
    _ping_when_idle(engine)
    return engine


def autocommit(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for reads and single-statement writes on the hot paths: on PostgreSQL each
    statement commits on its own, which saves the BEGIN and the COMMIT or ROLLBACK round trips
    (about a third of a webhook delivery's). Reads see what they saw in a transaction: under READ
    COMMITTED each statement takes its own snapshot either way. On SQLite, the sessions given:
    there a transaction's reads share one snapshot, and the write lock is the transaction's."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return sessions
    options = {name: value for name, value in sessions.kw.items() if name != "bind"}
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), **options)


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle a while (SQLAlchemy's
    documented custom pessimistic ping): `pool_pre_ping` pings on every checkout, a round trip
    that cost a busy server about 10 per webhook delivery. A connection that fails the ping is
    replaced; one that died while in use recently fails its statement, and SQLAlchemy then
    replaces every pooled connection of that moment (its disconnect handling)."""

    def checked_in(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as err:
            raise exc.DisconnectionError(f"pooled connection failed its ping: {err}") from err

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _connect_with_retries(
    dialect: Any, _record: Any, cargs: Any, cparams: Any, *, attempts: int, backoff_s: float = 0.25
) -> Any:
    for attempt in range(attempts - 1):
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as err:
            log.warning(
                "database connection failed (attempt %d of %d): %s",
                attempt + 1,
                attempts,
                type(err).__name__,
            )
            time.sleep(backoff_s * 2**attempt)
    return dialect.connect(*cargs, **cparams)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch (dialog, knowledge and ui each add
    their own)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            _lock_for_migration(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
    except Exception as err:
        raise ConfigError(f"cannot prepare the database at {engine.url!r}: {err}") from err


MIGRATION_LOCK = 0x61737369  # "assi": the advisory lock key migrations hold on PostgreSQL


def _lock_for_migration(connection: Connection) -> None:
    """One migrating process at a time: servers started together on a fresh database otherwise
    race to create the same tables. The lock ends with the migration's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine with its schema migrated and a session factory.

    >>> db = Database("sqlite:////tmp/assistant.db")
    >>> with db.session() as session: ...
    """

    def __init__(
        self, url: str, *, run_migrations: bool = True, busy_timeout_s: float = 10.0
    ) -> None:
        self.engine = make_engine(url, busy_timeout_s=busy_timeout_s)
        if run_migrations:
            migrate(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()
