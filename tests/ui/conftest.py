"""Front-end fixtures: components over fakes with a small knowledge base, and real servers on
loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.core.settings import Settings
from assistant.wiring import Components
from benchmarks.serving import free_port, serving
from tests.fakes import FakeChatModel, HashingEmbedder

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECRET = "test-webhook-secret"
__all__ = ["SECRET", "WithService", "free_port", "serving", "sse_events", "write_docs"]


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "warranty.md").write_text(
        "# Blender warranty\n\nThe warranty on blenders lasts two years from delivery.\n"
    )
    (folder / "loyalty.md").write_text(
        "# Loyalty points\n\nLoyalty points expire after eighteen months.\n"
    )
    return folder


class WithService:
    """Real components with a stand-in dialog manager: the backend a front-end test runs on when
    it needs answers the real manager would not give on cue."""

    def __init__(self, parts: Components, service: object) -> None:
        self._parts = parts
        self.assistant = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parts, name)


def sse_events(base: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """POST to the streaming endpoint and read its server-sent events as (name, data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", f"{base}/api/v1/messages/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


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
