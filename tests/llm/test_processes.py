"""Whole processes: `assistant model serve` serves and stops within seconds on SIGTERM, even
mid-answer; the embedded server never blocks exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from assistant.llm.server.embedded import free_port
from tests.conftest import MODEL_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_MODEL_DIR=str(MODEL_CACHE),
        ASSISTANT_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
        ASSISTANT_DATA_DIR=os.environ["ASSISTANT_DATA_DIR"],
        ASSISTANT_CONFIG=os.environ["ASSISTANT_CONFIG"],
    )
    return env


def _stream_until_first_words(port: int, started: threading.Event) -> None:
    """A long answer, streamed; the server is stopped while it is being generated."""
    body = {"messages": [{"role": "user", "content": "Tell me a long story."}], "stream": True}
    body.update(max_tokens=2000, temperature=0)
    try:
        with httpx.stream(
            "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120
        ) as reply:
            for line in reply.iter_lines():
                if '"content"' in line and '"content": ""' not in line:
                    started.set()
    except httpx.HTTPError:
        pass  # the server went away mid-answer, as it should
    started.set()


def test_model_serve_answers_then_stops_on_sigterm_mid_answer() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "model", "serve", "--port", str(port)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.5)
        body = {
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 8,
            "temperature": 0,
        }
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120
        ).json()
        assert "Paris" in reply["choices"][0]["message"]["content"]
        started = threading.Event()
        streamer = threading.Thread(target=_stream_until_first_words, args=(port, started))
        streamer.start()
        assert started.wait(120)
    finally:
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - stopped < 20, "SIGTERM must end the server within seconds"
    streamer.join(timeout=30)
    assert proc.returncode == 0, output
    assert "continuous batching on" in output


def test_embedded_server_does_not_hold_the_process_at_exit() -> None:
    script = (
        "from assistant_core.settings import load_settings\n"
        "from assistant.wiring import build_chat_model\n"
        "model = build_chat_model(load_settings())\n"
        "print('ANSWER', model.complete([{'role': 'user', 'content': 'Hi'}], max_tokens=3).text)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ANSWER" in done.stdout and "terminate called" not in done.stderr
    assert time.monotonic() - started < 170
