"""One turn at a time per conversation, across processes, in arrival order; other conversations
never wait.

PostgreSQL: a session-level advisory lock keyed by the conversation id, on a connection held for
the turn. Waiters queue in the server's lock manager in arrival order, and a crashed process's
lock goes with its connection.

SQLite: the whole file has one write lock, so holding `BEGIN IMMEDIATE` through a turn (seconds
of generation) would stall every other conversation. Instead each turn takes a ticket in a short
`BEGIN IMMEDIATE` transaction; the lowest ticket of a conversation holds it. Tickets of dead
processes (same host, pid gone) or older than `stale_after` seconds are dropped.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from assistant_core.db import make_engine
from dialog.errors import DialogError


class TurnLockTimeout(DialogError):
    """Another turn of this conversation held it for longer than we could wait."""


class Held:
    """A held conversation lock; `release()` is idempotent. Use as a context manager."""

    def __init__(self, conversation_id: str, release: Callable[[], None]) -> None:
        self.conversation_id = conversation_id
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    @property
    def held(self) -> bool:
        return self._release is not None

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class TurnLocks(Protocol):
    """Hands out per-conversation locks.

    >>> with locks.acquire("c1", timeout=30):
    ...     ...  # load state, run the turn, append events
    """

    def acquire(self, conversation_id: str, *, timeout: float = 60.0) -> Held: ...


def locks_for(engine: Engine, **options: Any) -> TurnLocks:
    """Advisory locks on PostgreSQL, the ticket queue on SQLite."""
    if engine.dialect.name == "postgresql":
        return PostgresTurnLocks(engine)
    return SqliteTurnLocks(engine, **options)


def advisory_key(conversation_id: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, stable across processes."""
    digest = hashlib.blake2b(f"assistant-turn:{conversation_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresTurnLocks:
    """`pg_advisory_lock` on a connection held for the turn; `lock_timeout` bounds the wait.

    The lock connections come from their own pool: were they taken from the application's pool,
    enough concurrent turns would hold every connection and wait forever for one to store events.
    That pool is pinged like the application's (only a connection that sat idle), and a lock
    connection that its first statement finds dead is replaced once (`_try_lock`): SQLAlchemy
    replaces the dead connections of a pool that saw a disconnect, but only of that pool, so
    after a database restart a stale lock connection would otherwise fail the turn.
    """

    def __init__(self, engine: Engine, *, max_turns: int = 200) -> None:
        self.engine = make_engine(engine.url, pool_size=8, max_overflow=max_turns)

    def acquire(self, conversation_id: str, *, timeout: float = 60.0) -> Held:
        key = advisory_key(conversation_id)
        conn, free = self._try_lock(key)
        try:
            if not free:
                # busy (or others queued first: PostgreSQL refuses a try that would jump them)
                conn.execute(text(f"SET lock_timeout = {max(1, int(timeout * 1000))}"))
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.execute(text("SET lock_timeout = 0"))
        except OperationalError as err:
            conn.close()
            raise TurnLockTimeout(
                f"conversation {conversation_id} is busy (waited {timeout:g} s)"
            ) from err
        except BaseException:
            conn.close()
            raise

        def release() -> None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                conn.close()

        return Held(conversation_id, release)

    def _try_lock(self, key: int) -> tuple[Connection, bool]:
        """A lock connection and whether the lock was free. Nothing has happened on a connection
        before this statement, so one found dead by it is replaced by a fresh one (a ping on
        every checkout would cost a round trip a turn)."""
        try:
            return self._try_lock_on_a_connection(key)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
            return self._try_lock_on_a_connection(key)

    def _try_lock_on_a_connection(self, key: int) -> tuple[Connection, bool]:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return conn, bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        except BaseException:
            conn.close()
            raise


class SqliteTurnLocks:
    """A ticket queue per conversation in `conversation_turn_tickets`."""

    def __init__(self, engine: Engine, *, poll_s: float = 0.01, stale_after: float = 600.0) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.stale_after = stale_after
        self.host = socket.gethostname()

    def acquire(self, conversation_id: str, *, timeout: float = 60.0) -> Held:
        owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        ticket = self._write(
            (
                "INSERT INTO conversation_turn_tickets (conversation_id, owner, taken_at) "
                "VALUES (?, ?, ?)"
            ),
            (conversation_id, owner, _now()),
        )
        deadline, pause = time.monotonic() + timeout, self.poll_s
        try:
            while True:
                head = self._head(conversation_id)
                if head is None or head[0] == ticket:
                    self._write(
                        "UPDATE conversation_turn_tickets SET taken_at = ? WHERE id = ?",
                        (_now(), ticket),
                    )
                    return Held(conversation_id, lambda: self._drop(ticket))
                if self._stale(head[1], head[2]):
                    self._drop(head[0])
                    continue
                if time.monotonic() > deadline:
                    raise TurnLockTimeout(
                        f"conversation {conversation_id} is busy (waited {timeout:g} s)"
                    )
                time.sleep(pause)
                pause = min(pause * 1.5, 0.1)
        except BaseException:
            self._drop(ticket)
            raise

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(sql, params)
            rowid = cursor.lastrowid or 0
            raw.commit()
            return rowid
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    def _head(self, conversation_id: str) -> tuple[int, str, str] | None:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(
                "SELECT id, owner, taken_at FROM conversation_turn_tickets "
                "WHERE conversation_id = ? ORDER BY id LIMIT 1",
                (conversation_id,),
            )
            row = cursor.fetchone()
            raw.rollback()
            return None if row is None else (int(row[0]), str(row[1]), str(row[2]))
        finally:
            raw.close()

    def _drop(self, ticket: int) -> None:
        self._write("DELETE FROM conversation_turn_tickets WHERE id = ?", (ticket,))

    def _stale(self, owner: str, taken_at: str) -> bool:
        host, _, rest = owner.partition(":")
        pid = int(rest.split(":", 1)[0] or 0)
        if host == self.host and pid and not _alive(pid):
            return True
        try:
            taken = datetime.fromisoformat(taken_at)
        except ValueError:
            return True
        if taken.tzinfo is None:
            taken = taken.replace(tzinfo=UTC)
        return datetime.now(UTC) - taken > timedelta(seconds=self.stale_after)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
