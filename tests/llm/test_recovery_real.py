"""transformers' batch loop killed for real under a request: that request gets a 503, /health says
so, a fresh loop takes over and the next request is answered (real model, own server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.llm.server.config import ServerConfig
from assistant.llm.server.embedded import BackgroundServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HI = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def server(chat_model_dir: Path) -> Iterator[BackgroundServer]:
    config = ServerConfig(model_path=chat_model_dir, device="cpu", max_batch=4, max_queue=4)
    with BackgroundServer(config) as running:
        yield running


def kill_the_greedy_loop(server: BackgroundServer) -> None:
    """Make the running loop's next scheduling step raise, as transformers' own errors do."""
    processor = server.engine._managers["greedy"].batch_processor

    def broken() -> bool:
        raise RuntimeError("No requests can be scheduled and no requests can be offloaded.")

    processor.prepare_next_batch = broken


def test_a_dead_batch_loop_fails_its_requests_with_503_and_is_replaced(
    server: BackgroundServer,
) -> None:
    root = server.base_url.removesuffix("/v1")
    replies: list[httpx.Response] = []
    body = {"messages": HI, "max_tokens": 400, "temperature": 0, "stop": ["never said"]}
    held = threading.Thread(
        target=lambda: replies.append(
            httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120)
        )
    )
    held.start()
    deadline = time.monotonic() + 60
    while not server.engine._routes and time.monotonic() < deadline:
        time.sleep(0.02)
    kill_the_greedy_loop(server)
    held.join(timeout=120)
    [reply] = replies
    assert reply.status_code == 503 and "please retry" in reply.json()["error"]["message"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{root}/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.engine.restarts == 1 and server.engine.status() == "ok"
    after = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"messages": HI, "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert after.status_code == 200 and "Paris" in after.json()["choices"][0]["message"]["content"]
    assert "assistant_lm_batch_restarts_total 1.0" in httpx.get(f"{root}/metrics").text
