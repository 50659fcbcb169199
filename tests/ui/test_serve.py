"""`assistant serve` builds the whole app from settings and hands it to uvicorn."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving

pytestmark = pytest.mark.unit


def test_serve_help() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output


def test_serve_runs_one_app_with_web_chat_api_and_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    app = App(
        overrides={
            "chat_model": FakeChatModel().enqueue("Hello there."),
            "embedder": HashingEmbedder(),
        }
    )
    result = CliRunner().invoke(main, ["serve", "--port", "8123"], obj=app)
    assert result.exit_code == 0, result.output
    assert (started["host"], started["port"]) == ("127.0.0.1", 8123)
    frozen = gc.get_freeze_count()
    try:
        with serving(started["app"]) as base:
            assert gc.get_freeze_count() > frozen, "the warmed-up heap is out of the GC's scans"
            assert httpx.get(base + "/healthz").json()["status"] == "ok"
            assert "gradio" in httpx.get(base + "/").text.lower()
            assert httpx.get(base + "/openapi.json").status_code == 200
    finally:
        gc.unfreeze()  # this test process goes on creating and dropping apps
