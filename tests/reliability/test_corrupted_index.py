"""A corrupted or truncated index at start: the assistant keeps running without retrieval, says so,
and `kb rebuild` repairs it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.messages import Message
from dialog.prompt import KB_UNAVAILABLE
from tests.fakes import FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit


def _parts(model: FakeChatModel | None = None) -> Components:
    return Components(
        Settings(), {"chat_model": model or FakeChatModel(), "embedder": HashingEmbedder()}
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete-meta"])
def test_damaged_index_is_reported_and_rebuilt(
    damage: str, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text(
        "# Shipping\n\nStandard shipping takes three business days.\n"
    )
    first = _parts()
    first.knowledge.ingest([docs])
    first.close()
    index_dir = data_dir / "index"
    vectors = next(index_dir.glob("vectors-*.faiss"))
    if damage == "truncate":
        vectors.write_bytes(vectors.read_bytes()[:64])
    elif damage == "garbage":
        vectors.write_bytes(b"not an index at all" * 10)
    else:
        (index_dir / "vectors.json").unlink()

    caplog.set_level(logging.WARNING)
    parts = _parts(FakeChatModel().enqueue("Standard shipping takes three business days."))
    reply = parts.assistant.handle(Message("How long does standard shipping take?", "c1"))
    assert reply.answer == KB_UNAVAILABLE and reply.sources == []
    assert "kb rebuild" in caplog.text, "the operator is told how to repair it"
    assert parts.assistant.handle(Message("/help", "c1")).answer, "commands still work"
    parts.close()

    app = App(overrides={"embedder": HashingEmbedder(), "chat_model": FakeChatModel()})
    rebuilt = CliRunner().invoke(main, ["kb", "rebuild"], obj=app)
    assert rebuilt.exit_code == 0, rebuilt.output
    app.close()
    repaired = _parts(FakeChatModel().enqueue("Three business days."))
    again = repaired.assistant.handle(Message("How long does standard shipping take?", "c2"))
    assert again.answer == "Three business days." and again.sources[0].source.endswith(
        "shipping.md"
    )
    repaired.close()
