"""One conversation, ten simultaneous messages, two server processes: one turn at a time, in arrival
order."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from dialog.locking import advisory_key
from tests.reliability.faulty_lm import Faults, faulty_app
from tests.ui.conftest import TOKEN_HEADER, free_port, scoped, serving, write_docs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = 10
_TAG = re.compile(r"\[same t-(\d+)\]")


def _spawn_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--no-web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_healthy(
    process: subprocess.Popen[bytes], base: str
) -> tuple[subprocess.Popen[bytes], str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become healthy")


def _in_line(database_url: str, conversation_id: str) -> int:
    """How many turns of the conversation hold or wait for its lock, read from the database."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            row = conn.execute(
                "SELECT count(*) FROM conversation_turn_tickets WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
        return int(row[0])
    key = advisory_key(conversation_id) & 0xFFFFFFFFFFFFFFFF
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND objsubid = 1 AND classid::bigint = :hi AND objid::bigint = :lo"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _bind(database_url: str, conversation_id: str) -> str:
    """Bind the conversation to the anonymous REST customer (no key exists) and return its token,
    so every message can join the line at once instead of racing to start it."""
    from assistant_core.db import Database
    from ui.access_http import ANONYMOUS_CUSTOMER
    from ui.access_owners import OwnershipStore

    database = Database(database_url)
    try:
        return OwnershipStore(database.session).bind(conversation_id, "api", ANONYMOUS_CUSTOMER)
    finally:
        database.close()


def _wait_in_line(database_url: str, expected: int) -> None:
    deadline = time.monotonic() + 60
    while _in_line(database_url, scoped("same")) < expected:
        assert time.monotonic() < deadline, f"message {expected - 1} never joined the line"
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_two_processes_take_turns_in_arrival_order(database_url: str, tmp_path: Path) -> None:
    # Arrival is when a turn joins the conversation's line (its ticket or its lock request). The
    # model holds every answer until all ten have joined, so the test does not depend on how fast
    # a busy machine takes requests in: each message is sent, alternating between the servers,
    # once the one before it is seen in the line.
    faults = Faults(mode="echo", delay_s=0.0, gate=threading.Event())
    with serving(faulty_app(faults)) as lm:
        env = {
            **os.environ,
            "ASSISTANT_DATABASE_URL": database_url,
            "ASSISTANT_LLM_BASE_URL": f"{lm}/v1",
            "ASSISTANT_TURN_LOCK_TIMEOUT_S": "240",
            "ASSISTANT_TURN_THREADS": str(MESSAGES),  # every held turn has a thread to wait in
        }
        subprocess.run(
            [sys.executable, "-m", "assistant", "ingest", str(write_docs(tmp_path / "docs"))],
            env=env,
            check=True,
            capture_output=True,
        )
        spawned = [_spawn_server(env) for _ in range(2)]
        try:
            servers = [_wait_healthy(*pair) for pair in spawned]
            statuses: dict[int, int] = {}
            token = _bind(database_url, scoped("same"))  # as the first reply would return it

            def send(number: int) -> None:
                base = servers[number % 2][1]
                question = f"How long does the blender warranty last? [same t-{number}]"
                response = httpx.post(
                    f"{base}/api/v1/messages",
                    json={"conversation_id": "same", "text": question},
                    headers={TOKEN_HEADER: token},
                    timeout=240,
                )
                statuses[number] = response.status_code

            threads = []
            try:
                for number in range(MESSAGES):
                    threads.append(threading.Thread(target=send, args=(number,)))
                    threads[-1].start()
                    _wait_in_line(database_url, number + 1)
            finally:
                faults.gate.set()  # type: ignore[union-attr]
            for thread in threads:
                thread.join(timeout=200)
            assert statuses == {n: 200 for n in range(MESSAGES)}
            events = httpx.get(
                f"{servers[0][1]}/api/v1/conversations/{scoped('same')}",
                headers={TOKEN_HEADER: token},
                timeout=30,
            ).json()["events"]
        finally:
            for process, _ in spawned:
                process.terminate()
                process.wait(timeout=30)
    talk = [(e["type"], e.get("text", "")) for e in events if e["type"] in {"user", "bot"}]
    assert [kind for kind, _ in talk] == ["user", "bot"] * MESSAGES, "one turn at a time"
    order = [int(_TAG.search(text).group(1)) for kind, text in talk if kind == "user"]  # type: ignore[union-attr]
    assert order == list(range(MESSAGES)), "arrival order"
    for (_, asked), (_, answered) in zip(talk[::2], talk[1::2], strict=True):
        assert _TAG.search(asked).group(0) in answered  # type: ignore[union-attr]
