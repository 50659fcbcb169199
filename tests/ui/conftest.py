"""Front-end fixtures: components over fakes with a small knowledge base, and real servers on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from assistant.settings import Settings
from assistant.wiring import Components
from tests.fakes import FakeChatModel, HashingEmbedder

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECRET = "test-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "warranty.md").write_text(
        "# Blender warranty\n\nThe warranty on blenders lasts two years from delivery.\n"
    )
    (folder / "loyalty.md").write_text(
        "# Loyalty points\n\nLoyalty points expire after eighteen months.\n"
    )
    return folder


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def ui_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ASSISTANT_CALLBACK_BACKOFF_S", "0.05")
    return Settings()


@pytest.fixture
def components(ui_settings: Settings, model: FakeChatModel, tmp_path: Path) -> Iterator[Components]:
    parts = Components(ui_settings, {"chat_model": model, "embedder": HashingEmbedder()})
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    yield parts
    parts.close()
