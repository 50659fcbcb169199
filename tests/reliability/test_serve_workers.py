"""`assistant serve --workers N`: N processes on one port and one PostgreSQL database answer, each
with its own delivery workers; SQLite, which serves one process, is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant.cli.app import App
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.reliability.delivery_cluster import (
    Receiver,
    deliver,
    engine_for,
    server_env,
    statuses,
    wait_until,
)
from tests.reliability.faulty_lm import Faults, faulty_app
from tests.ui.conftest import free_port, serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTION = "How long is the warranty?"


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (uvicorn's workers of the supervisor)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def test_two_workers_serve_and_answer(postgres_url: str, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.up()
    engine = engine_for(postgres_url)
    try:
        with serving(faulty_app(Faults(mode="echo", delay_s=0.0))) as lm:
            env = server_env(
                postgres_url, lm, delivery_poll_s="0.2", turn_threads="2", shutdown_grace_s="5"
            )
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with (tmp_path / "serve.log").open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "assistant", "serve", "--no-web"]
                    + ["--port", str(port), "--workers", "2"],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            try:

                def healthy() -> bool:
                    assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                    try:
                        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_until(healthy, "the workers answer /healthz", 180)
                wait_until(lambda: len(_children(process.pid)) >= 2, "two worker processes")
                codes: list[int] = []
                senders = [
                    threading.Thread(
                        target=lambda n=n: codes.append(
                            deliver(base, f"d{n}", f"c{n}", QUESTION, receiver.url)
                        )
                    )
                    for n in range(8)
                ]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join(60)
                assert sorted(codes) == [202] * 8
                wait_until(lambda: receiver.count() == 8, "every delivery is called back")
                assert receiver.copies() == {f"d{n}": 1 for n in range(8)}
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=90) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(30)
        assert statuses(engine) == {"delivered": 8}, "nothing left running after SIGTERM"
    finally:
        receiver.down()
        engine.dispose()


def test_several_workers_need_postgresql(data_dir: Path) -> None:
    app = App({"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})
    result = CliRunner().invoke(main, ["serve", "--workers", "2"], obj=app, env=dict(os.environ))
    assert result.exit_code == 2
    assert "needs PostgreSQL" in result.output
