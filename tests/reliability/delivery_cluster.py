"""Helpers for the durable-delivery tests: `assistant serve` processes on one database, a callback
receiver on loopback, signed deliveries, and what the database says about them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.ui.conftest import SECRET, free_port, write_docs
from ui.signing import sign

TAG = re.compile(r"\[same t-(\d+)\]")
"""A message's tag: `t-(10 * conversation + turn)`, words the relevance check takes as common."""


def engine_for(database_url: str) -> Engine:
    return create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))


def wait_until(condition: Callable[[], Any], what: str, deadline_s: float = 120.0) -> Any:
    """Poll an observable condition (no fixed sleeps); fail with `what` past a generous deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@dataclass
class Server:
    """One `assistant serve` process."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Cluster:
    """Servers over one database; `env` is what each is started with."""

    env: dict[str, str]
    logs: Path
    servers: list[Server] = field(default_factory=list)

    def start(self) -> Server:
        port = free_port()
        log = self.logs / f"serve-{len(self.servers)}-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "assistant", "serve", "--no-web", "--port", str(port)],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        return server

    def wait_healthy(self, server: Server) -> Server:
        def healthy() -> bool:
            assert server.process.poll() is None, server.log.read_text()[-3000:]
            try:
                return httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, f"{server.base} is healthy", 180)
        return server

    def alive(self) -> list[Server]:
        return [s for s in self.servers if s.process.poll() is None]

    def kill(self, server: Server) -> None:
        """SIGKILL, and reap it (a zombie's pid still looks alive to the SQLite lock)."""
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)

    def stop_all(self) -> None:
        for server in self.alive():
            server.process.terminate()
        for server in self.servers:
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()


@contextmanager
def cluster(env: dict[str, str], logs: Path) -> Iterator[Cluster]:
    logs.mkdir(parents=True, exist_ok=True)
    group = Cluster(env, logs)
    try:
        yield group
    finally:
        group.stop_all()


def server_env(database_url: str, lm: str, **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ASSISTANT_DATABASE_URL": database_url,
        "ASSISTANT_LLM_BASE_URL": f"{lm}/v1",
        "ASSISTANT_WEBHOOK_SECRET": SECRET,
        "ASSISTANT_TURN_LOCK_TIMEOUT_S": "120",
    }
    env.update({f"ASSISTANT_{k.upper()}": v for k, v in settings.items()})
    return env


def ingest(env: dict[str, str], folder: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(write_docs(folder))],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def deliver(base: str, delivery_id: str, conversation_id: str, text_: str, callback: str) -> int:
    """POST one signed generic delivery with a callback; the HTTP status (0: no answer)."""
    body = json.dumps(
        {
            "delivery_id": delivery_id,
            "conversation_id": conversation_id,
            "text": text_,
            "callback_url": callback,
        }
    ).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Assistant-Timestamp": ts,
        "X-Assistant-Signature": sign(SECRET, ts, body),
    }
    try:
        response = httpx.post(f"{base}/webhooks/generic", content=body, headers=headers, timeout=30)
    except httpx.HTTPError:
        return 0
    return response.status_code


@dataclass
class Receiver:
    """A callback receiver on a fixed loopback port; `up()` and `down()` switch it."""

    port: int = field(default_factory=free_port)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver.lock:
                    receiver.received[body["delivery_id"]].append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def copies(self) -> dict[str, int]:
        with self.lock:
            return {key: len(items) for key, items in self.received.items()}


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM ui_deliveries GROUP BY status"))
        return {str(status): int(n) for status, n in rows}


def held_in_turns(engine: Engine, pid: int) -> int:
    """Deliveries the process holds whose turn has not produced an answer yet."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM ui_deliveries WHERE status = 'running' "
                    "AND answer IS NULL AND worker LIKE :pid"
                ),
                {"pid": f"%:{pid}:%"},
            ).scalar_one()
        )


def talk(engine: Engine, conversation_id: str) -> list[tuple[str, str, str | None]]:
    """The conversation's user and bot events in order: (type, text, delivery_id)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type, payload FROM events WHERE conversation_id = :cid "
                "AND type IN ('user', 'bot') ORDER BY seq"
            ),
            {"cid": conversation_id},
        ).all()
    out = []
    for kind, payload in rows:
        data = payload if isinstance(payload, dict) else json.loads(payload)
        out.append((str(kind), str(data.get("text", "")), data.get("delivery_id")))
    return out
