"""Hostile uploads through the admin area's upload handler: refused or skipped, the rest goes on,
nothing escapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from ui.admin.desk import AdminDesk
from ui.admin.knowledge import KnowledgeAdmin
from ui.runtime import Runtime

pytestmark = pytest.mark.unit


@pytest.fixture
def gradio_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "gradio"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture
def web(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KnowledgeAdmin]:
    monkeypatch.setenv("ASSISTANT_MAX_DOCUMENT_BYTES", "4096")
    parts = Components(Settings(), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})
    yield KnowledgeAdmin(AdminDesk(Runtime(parts)))
    parts.close()


def _upload(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    path.write_bytes(content)
    return str(path)


def test_hostile_uploads_are_refused_and_good_ones_ingested(
    web: KnowledgeAdmin, gradio_uploads: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret-notes.md"
    outside.write_text("# Secret\n\nThe admin password is hunter2.\n")
    files = [
        _upload(
            gradio_uploads, "good.md", b"# Gift cards\n\nGift cards are valid for two years.\n"
        ),
        _upload(gradio_uploads, "huge.md", b"# Huge\n\n" + b"a" * 10_000),
        _upload(gradio_uploads, "binary.md", b"\xff\xfe\x00\x81 not text \x00\xff"),
        _upload(gradio_uploads, "fake.pdf", b"this is not a PDF at all"),
        _upload(gradio_uploads, "fake.docx", b"PK not really a zip"),
        _upload(gradio_uploads, "..hidden..md", b"# Dots\n\nA file with dots in its name.\n"),
        str(outside),
        "/etc/passwd",
    ]
    message, status, _ = web.upload(files)
    assert "huge.md: larger than" in message
    assert (
        "secret-notes.md: not an uploaded file" in message
        and "passwd: not an uploaded file" in message
    )
    for name in ("binary.md", "fake.pdf", "fake.docx"):
        assert name in message.split("skipped", 1)[1], f"{name} was not reported"
    knowledge = web.desk.components.knowledge
    assert knowledge.count()[0] == 2, status
    assert knowledge.search("gift cards valid", k=1)[0].source.endswith("good.md")
    assert not knowledge.search("admin password hunter2", k=3, min_score=0.3)
    stored = Path(web.upload_dir) / "documents"
    assert all(p.resolve().parent == stored.resolve() for p in stored.iterdir())
    assert {p.name for p in stored.iterdir()} >= {"good.md", "hidden..md"}
