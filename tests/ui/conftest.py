"""Front-end fixtures: components over fakes with a small knowledge base, and real servers on
loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.core.settings import Settings
from assistant.wiring import Components
from benchmarks.serving import free_port, serving
from tests.fakes import FakeChatModel, HashingEmbedder

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECRET = "test-webhook-secret"
__all__ = ["SECRET", "free_port", "serving", "write_docs"]


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
