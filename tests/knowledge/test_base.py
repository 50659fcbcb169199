from pathlib import Path

import pytest

from assistant.db import Database
from knowledge.base import KnowledgeBase
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.unit


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shipping.md").write_text("# Shipping\n\nParcels ship with the carrier Zephyr in three days.\n")
    (folder / "returns.md").write_text("# Returns\n\nReturn unworn clothes within thirty days for a refund.\n")
    (folder / "notes.txt").write_text("Gift wrapping costs two euros per parcel.\n")
    return folder


@pytest.fixture
def kb(database: Database, data_dir: Path, embedder: HashingEmbedder) -> KnowledgeBase:
    return KnowledgeBase(database.session, embedder, data_dir / "index")


def test_ingest_then_search_finds_the_right_file(kb: KnowledgeBase, tmp_path: Path) -> None:
    report = kb.ingest([_write(tmp_path / "docs")])
    assert (report.files, report.unchanged, report.failed) == (3, 0, [])
    hits = kb.search("which carrier ships parcels", k=2)
    assert hits[0].source.endswith("shipping.md")
    assert hits[0].title == "Shipping"
    assert kb.count() == (3, report.chunks)


def test_reingesting_unchanged_files_embeds_nothing(
    kb: KnowledgeBase, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    docs = _write(tmp_path / "docs")
    kb.ingest([docs])
    before = embedder.texts_embedded
    report = kb.ingest([docs])
    assert (report.unchanged, report.chunks) == (3, 0)
    assert embedder.texts_embedded == before


def test_changed_file_replaces_its_chunks(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _write(tmp_path / "docs")
    kb.ingest([docs])
    old_ids = {h.chunk_id for h in kb.search("carrier Zephyr", k=5) if h.source.endswith("shipping.md")}
    (docs / "shipping.md").write_text("# Shipping\n\nParcels now ship with Boreal couriers overnight.\n")
    report = kb.ingest([docs])
    assert (report.unchanged, report.files) == (2, 3)
    hits = kb.search("Boreal couriers overnight", k=5)
    assert hits[0].source.endswith("shipping.md") and "Boreal" in hits[0].text
    assert not old_ids & {h.chunk_id for h in kb.search("carrier Zephyr", k=10)}
    assert len(kb.index) == kb.count()[1]


def test_unreadable_file_is_reported_and_the_rest_goes_on(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _write(tmp_path / "docs")
    (docs / "broken.md").write_bytes(b"\xff\xfe\x00 not utf-8 \xff")
    report = kb.ingest([docs])
    assert report.files == 3
    assert len(report.failed) == 1 and "broken.md" in report.failed[0]


def test_index_survives_a_restart(database: Database, data_dir: Path, tmp_path: Path) -> None:
    first = KnowledgeBase(database.session, HashingEmbedder(), data_dir / "index")
    first.ingest([_write(tmp_path / "docs")])
    second = KnowledgeBase(database.session, HashingEmbedder(), data_dir / "index")
    assert second.search("gift wrapping euros", k=1)[0].source.endswith("notes.txt")


def test_min_score_filters_unrelated_queries(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest([_write(tmp_path / "docs")])
    assert kb.search("quantum chromodynamics lattice", k=3, min_score=0.2) == []
