"""One conversation, ten simultaneous messages, two server processes: one turn at a time, in arrival
order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.faulty_lm import Faults, faulty_app
from tests.ui.conftest import free_port, serving, write_docs

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


@pytest.mark.timeout(300)
def test_two_processes_take_turns_in_arrival_order(database_url: str, tmp_path: Path) -> None:
    # sends 0.5 s apart (with two CPU-bound jobs beside it, this 2-core machine took over 0.25 s
    # to take a request in), while each answer takes 1 s: later messages queue behind the turn
    faults = Faults(mode="echo", delay_s=1.0)
    with serving(faulty_app(faults)) as lm:
        env = {
            **os.environ,
            "ASSISTANT_DATABASE_URL": database_url,
            "ASSISTANT_LLM_BASE_URL": f"{lm}/v1",
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

            def send(number: int) -> None:
                base = servers[number % 2][1]
                text = f"How long does the blender warranty last? [same t-{number}]"
                response = httpx.post(
                    f"{base}/api/v1/messages",
                    json={"conversation_id": "same", "text": text},
                    timeout=120,
                )
                statuses[number] = response.status_code

            threads = []
            for number in range(MESSAGES):
                threads.append(threading.Thread(target=send, args=(number,)))
                threads[-1].start()
                time.sleep(0.25)
            for thread in threads:
                thread.join(timeout=150)
            assert statuses == {n: 200 for n in range(MESSAGES)}
            events = httpx.get(f"{servers[0][1]}/api/v1/conversations/same", timeout=30).json()[
                "events"
            ]
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
