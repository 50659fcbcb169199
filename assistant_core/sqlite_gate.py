"""One writer at a time per SQLite file within a process, queued on a lock that wakes at once.

SQLite lets one writer in at a time and makes the others poll in its busy handler, which sleeps
up to 100 ms between tries: 50 webhook claims beside running turns waited up to 0.6 s for a lock
that was free most of that time. Writers of this process now wait on a Python lock instead;
writers in other processes still meet SQLite's busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Self

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
_gates: dict[str, threading.Lock] = {}
_gates_lock = threading.Lock()


def _gate_for(database: str) -> threading.Lock:
    """One lock per database file in this process (':memory:' and '' databases are private)."""
    if database in ("", ":memory:") or database.startswith("file:"):
        return threading.Lock()
    key = os.path.realpath(database)
    with _gates_lock:
        return _gates.setdefault(key, threading.Lock())


class GatedSqliteConnection(sqlite3.Connection):
    """A sqlite3 connection (pass it as `factory`) whose writes first take the file's gate.

    >>> sqlite3.connect("app.db", timeout=10, factory=GatedSqliteConnection)
    """

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._gate = _gate_for(os.fspath(database))
        self._timeout = float(kwargs.get("timeout", 5.0))
        self._writing = False

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _GatedCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._settle()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._settle()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._open_gate()

    def _before(self, sql: str) -> None:
        """Take the gate before the statement that starts a write; keep it until the transaction
        ends."""
        if not self._writing and sql.lstrip()[:15].upper().startswith(_WRITES):
            if not self._gate.acquire(timeout=self._timeout):
                raise sqlite3.OperationalError("database is locked")
            self._writing = True

    def _settle(self) -> None:
        """Open the gate once no transaction is left (after commit, rollback, or a failed write)."""
        if self._writing and not self.in_transaction:
            self._open_gate()

    def _open_gate(self) -> None:
        if self._writing:
            self._writing = False
            self._gate.release()


class _GatedCursor(sqlite3.Cursor):
    connection: GatedSqliteConnection

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        return self._gated(super().execute, sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Self:
        return self._gated(super().executemany, sql, parameters)

    def _gated(self, run: Callable[[str, Any], Self], sql: str, parameters: Any) -> Self:
        self.connection._before(sql)
        try:
            return run(sql, parameters)
        finally:
            self.connection._settle()
