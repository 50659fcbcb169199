"""The web chat shows the company's own title, introduction, placeholder and example questions
(the domain file's persona), and neutral texts without one: never the demo shop's."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving
from ui.server import create_app

pytestmark = pytest.mark.unit

PERSONA = """\
persona:
  company: Acme Kettles
  web:
    title: Acme Kettles help
    intro: Ask us anything about your kettle.
    placeholder: Ask about descaling, warranty, spare parts…
    examples: ["How do I descale my kettle?"]
"""


def _page_config(settings: Settings) -> str:
    parts = Components(settings, {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})
    try:
        with serving(create_app(parts)) as base:
            return httpx.get(f"{base}/config").text
    finally:
        parts.close()


def test_the_page_shows_the_personas_texts(tmp_path: Path) -> None:
    domain = tmp_path / "domain.yaml"
    domain.write_text(PERSONA)
    config = _page_config(Settings(domain=str(domain)))
    for text in (
        "Acme Kettles help",
        "Ask us anything about your kettle.",
        "Ask about descaling, warranty, spare parts…",
        "How do I descale my kettle?",
    ):
        assert text in config


def test_without_a_persona_the_page_is_neutral() -> None:
    config = _page_config(Settings(domain="none"))
    assert "Support assistant" in config and "Ask a question…" in config
    assert "Northwind" not in config and "shipping, returns" not in config


def test_the_terminal_chat_greets_in_the_companys_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from ui.terminal import TerminalChat

    domain = tmp_path / "domain.yaml"
    domain.write_text('persona:\n  greeting: "Hi, this is Acme Kettles support."\n')
    parts = Components(
        Settings(domain=str(domain)), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()}
    )
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO("/quit\n"))
    TerminalChat(parts, console=Console(file=out, width=120)).run()
    parts.close()
    assert "Hi, this is Acme Kettles support." in out.getvalue()
    assert "assistant ingest docs/" in out.getvalue()  # the empty knowledge base's hint
