"""The per-conversation turn lock, across real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant_core.db import Database
from dialog.locking import TurnLockTimeout, locks_for

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


def _spawn(
    database: Database, conversation: str, hold: float, log: Path, name: str, timeout: float = 20
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "tests.dialog.lock_worker",
        _url(database),
        conversation,
        str(hold),
        str(log),
        name,
        str(timeout),
    ]
    return subprocess.Popen(args, cwd=REPO)


def _lines(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    out = {}
    for line in log.read_text().splitlines():
        name, what, when = line.split()
        out[f"{name} {what}"] = float(when)
    return out


def _wait_for(log: Path, key: str, timeout: float = 20.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if key in (lines := _lines(log)):
            return lines[key]
        time.sleep(0.02)
    raise AssertionError(f"{key!r} never appeared in {_lines(log)}")


def _finish(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        assert proc.wait(timeout=30) == 0


def _asked_and_queued(log: Path, name: str) -> None:
    _wait_for(log, f"{name} asked")
    time.sleep(0.5)  # the ticket (SQLite) or the lock wait (PostgreSQL) follows "asked" at once


def test_one_turn_at_a_time_per_conversation(database: Database, tmp_path: Path) -> None:
    log = tmp_path / "log"
    held = locks_for(database.engine).acquire("c1", timeout=5)
    b = _spawn(database, "c1", 0.0, log, "B")
    _asked_and_queued(log, "B")
    assert "B got" not in _lines(log)
    held.release()
    _wait_for(log, "B got")
    _finish(b)


def test_other_conversations_are_not_blocked(database: Database, tmp_path: Path) -> None:
    log = tmp_path / "log"
    held = locks_for(database.engine).acquire("c1", timeout=5)
    b = _spawn(database, "c2", 0.0, log, "B")
    _wait_for(log, "B got")
    assert held.held
    held.release()
    _finish(b)


def test_waiting_turns_run_in_arrival_order(database: Database, tmp_path: Path) -> None:
    log = tmp_path / "log"
    held = locks_for(database.engine).acquire("c1", timeout=5)
    b = _spawn(database, "c1", 0.05, log, "B")
    _asked_and_queued(log, "B")
    c = _spawn(database, "c1", 0.05, log, "C")
    _asked_and_queued(log, "C")
    assert "B got" not in _lines(log) and "C got" not in _lines(log)
    held.release()
    _finish(b, c)
    lines = _lines(log)
    assert lines["B got"] <= lines["B done"] <= lines["C got"]


def test_waiting_is_bounded(database: Database) -> None:
    locks = locks_for(database.engine)
    held = locks.acquire("c1", timeout=5)
    started = time.monotonic()
    with pytest.raises(TurnLockTimeout):
        locks.acquire("c1", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    held.release()
    with locks.acquire("c1", timeout=2):
        pass


def test_a_killed_holder_does_not_block_forever(database: Database, tmp_path: Path) -> None:
    log = tmp_path / "log"
    a = _spawn(database, "c1", 60, log, "A")
    _wait_for(log, "A got")
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=10)
    held = locks_for(database.engine).acquire("c1", timeout=10)
    assert held.held
    held.release()
    assert not held.held
