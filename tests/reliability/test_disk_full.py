"""Disk full while writing the index: the old index stays usable, and the next ingest catches up."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.errors import IndexWriteFailed
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs for the index; skipped where this user may not mount."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _docs(folder: Path, topic: str, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{topic}-{number}.md").write_text(
            f"# {topic} {number}\n\nThe {topic} rule code{topic}{number} applies.\n"
        )
    return folder


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    try:
        with filler.open("wb", buffering=0) as handle:
            while True:
                handle.write(b"\0" * 4096)
    except OSError:  # ENOSPC: the disk is full, which is the point
        pass
    return filler


def test_disk_full_keeps_the_old_index_and_recovers(
    database: Database, tiny_disk: Path, tmp_path: Path
) -> None:
    index_dir = tiny_disk / "index"
    kb = KnowledgeBase(database.session, HashingEmbedder(), index_dir)
    kb.ingest([_docs(tmp_path / "a", "shipping", 5)])
    before = sorted(p.name for p in index_dir.iterdir())
    filler = _fill(tiny_disk)

    with pytest.raises(IndexWriteFailed, match="no space left.*previous index is unchanged"):
        kb.ingest([_docs(tmp_path / "b", "warranty", 200)])
    assert sorted(p.name for p in index_dir.iterdir() if not p.name.startswith(".")) == before, (
        "old files untouched"
    )

    reopened = KnowledgeBase(database.session, HashingEmbedder(), index_dir)
    assert reopened.search("codeshipping3", k=1)[0].source.endswith("shipping-3.md")

    filler.unlink()
    again = KnowledgeBase(database.session, HashingEmbedder(), index_dir)
    again.ingest([tmp_path / "b"])
    assert again.search("codewarranty150", k=1)[0].source.endswith("warranty-150.md")
    assert len(again.index) == again.count()[1], "index and database agree"
