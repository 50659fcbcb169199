import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import knowledge.base as base_module
from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.errors import IndexCorrupted, IndexMismatch
from knowledge.index import VectorIndex
from knowledge.records import ChunkRow
from tests.fakes import HashingEmbedder
from tests.knowledge import files

pytestmark = pytest.mark.unit


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shipping.md").write_text(
        "# Shipping\n\nParcels ship with the carrier Zephyr in three days.\n"
    )
    (folder / "returns.md").write_text(
        "# Returns\n\nReturn unworn clothes within thirty days for a refund.\n"
    )
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
    old_ids = {
        h.chunk_id for h in kb.search("carrier Zephyr", k=5) if h.source.endswith("shipping.md")
    }
    (docs / "shipping.md").write_text(
        "# Shipping\n\nParcels now ship with Boreal couriers overnight.\n"
    )
    report = kb.ingest([docs])
    assert (report.unchanged, report.files) == (2, 3)
    hits = kb.search("Boreal couriers overnight", k=5)
    assert hits[0].source.endswith("shipping.md") and "Boreal" in hits[0].text
    assert not old_ids & {h.chunk_id for h in kb.search("carrier Zephyr", k=10)}
    assert len(kb.index) == kb.count()[1]


def test_unreadable_file_is_reported_and_the_rest_goes_on(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
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


# ---- formats, incremental ingest, removal, consistency


def _kb(
    database: Database, data_dir: Path, embedder: HashingEmbedder | None = None, **options: Any
) -> KnowledgeBase:
    return KnowledgeBase(
        database.session, embedder or HashingEmbedder(), data_dir / "index", **options
    )


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("pump and boiler covered", "warranty.html"),
        ("loyalty points expire eighteen months", "loyalty.pdf"),
        ("pedals spanner", "bicycle.docx"),
        ("ship to Norway", "faq.csv"),
        ("student discount", "more-faq.jsonl"),
        ("gift wrapping euros", "gift-wrapping.txt"),
        ("refunds reach your card", "returns.md"),
    ],
)
def test_every_format_is_ingested_and_found(
    kb: KnowledgeBase, tmp_path: Path, query: str, name: str
) -> None:
    report = kb.ingest([files.write_all(tmp_path / "docs")])
    assert (report.files, report.failed) == (7, [])
    hit = kb.search(query, k=1)[0]
    assert Path(hit.source).name == name
    assert hit.heading and hit.kb_version == report.kb_version >= 1


def test_unchanged_folder_of_every_format_embeds_nothing(
    kb: KnowledgeBase, tmp_path: Path, embedder: HashingEmbedder, data_dir: Path
) -> None:
    docs = files.write_all(tmp_path / "docs")
    first = kb.ingest([docs])
    index_files = {p.name: p.stat().st_mtime_ns for p in (data_dir / "index").iterdir()}
    calls, texts = embedder.calls, embedder.texts_embedded
    again = kb.ingest([docs])
    assert (again.files, again.unchanged, again.chunks) == (7, 7, 0)
    assert (embedder.calls, embedder.texts_embedded) == (calls, texts)
    assert again.kb_version == first.kb_version
    assert {p.name: p.stat().st_mtime_ns for p in (data_dir / "index").iterdir()} == index_files


def test_one_changed_file_embeds_only_its_chunks(
    kb: KnowledgeBase, tmp_path: Path, embedder: HashingEmbedder
) -> None:
    docs = files.write_all(tmp_path / "docs")
    kb.ingest([docs])
    before = embedder.texts_embedded
    files.write_faq_jsonl(docs / "sub" / "more-faq.jsonl")  # same content: unchanged
    (docs / "faq.csv").write_text(
        'question,answer\n"Do you ship to Iceland?","Yes, in eight days."\n'
    )
    report = kb.ingest([docs])
    assert (report.unchanged, report.chunks) == (6, 1)
    assert embedder.texts_embedded - before == 1
    assert Path(kb.search("ship to Iceland", k=1)[0].source).name == "faq.csv"
    assert all("Norway" not in h.text for h in kb.search("ship to Norway", k=10))


def test_remove_takes_the_vectors_out_for_real(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    kb = _kb(database, data_dir)
    docs = files.write_all(tmp_path / "docs")
    kb.ingest([docs])
    assert kb.remove([docs / "sub"]) == sorted(
        str((docs / "sub" / n).resolve())
        for n in ("deeper/bicycle.docx", "loyalty.pdf", "more-faq.jsonl", "warranty.html")
    )
    for query in ("pump and boiler covered", "student discount", "pedals spanner"):
        assert all("/sub/" not in h.source for h in kb.search(query, k=10))
    assert len(kb.index) == kb.count()[1] == len(set(kb.index.ids().tolist()))
    restarted = _kb(database, data_dir)
    assert len(restarted.index) == kb.count()[1]
    assert all("/sub/" not in h.source for h in restarted.search("student discount", k=10))


def test_remove_missing_files(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = files.write_all(tmp_path / "docs")
    kb.ingest([docs])
    (docs / "faq.csv").unlink()
    assert [Path(s).name for s in kb.remove(missing=True)] == ["faq.csv"]
    assert kb.count()[0] == 6 and kb.remove(missing=True) == []


def test_chunk_ids_are_never_reused(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _write(tmp_path / "docs")
    kb.ingest([docs])
    old = set(kb.index.ids().tolist())
    kb.remove([docs])
    assert len(kb.index) == 0
    kb.ingest([docs])
    assert min(kb.index.ids().tolist()) > max(old)


def test_failed_transaction_leaves_sql_and_index_as_they_were(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _write(tmp_path / "docs")
    kb.ingest([docs])
    ids, counts = sorted(kb.index.ids().tolist()), kb.count()
    (docs / "shipping.md").write_text(
        "# Shipping\n\nParcels now ship with Boreal couriers overnight.\n"
    )
    (docs / "new.md").write_text("# New\n\nA brand new article about umbrellas.\n")

    def broken(session: object) -> int:
        raise OperationalError("UPDATE knowledge_state", {}, Exception("disk I/O error"))

    monkeypatch.setattr(base_module, "_bump", broken)
    with pytest.raises(OperationalError):
        kb.ingest([docs])
    assert sorted(kb.index.ids().tolist()) == ids and kb.count() == counts
    assert kb.search("carrier Zephyr", k=1)[0].source.endswith("shipping.md")
    monkeypatch.undo()
    assert kb.ingest([docs]).chunks == 2
    assert len(kb.index) == kb.count()[1]


def test_an_index_left_behind_by_a_crash_is_reconciled_at_load(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    docs = _write(tmp_path / "docs")
    _kb(database, data_dir).ingest([docs])
    saved = tmp_path / "saved-index"
    shutil.copytree(data_dir / "index", saved)
    (docs / "shipping.md").write_text(
        "# Shipping\n\nParcels now ship with Boreal couriers overnight.\n"
    )
    (docs / "umbrellas.md").write_text("# Umbrellas\n\nEvery umbrella has a lifetime guarantee.\n")
    _kb(database, data_dir).ingest([docs])
    shutil.rmtree(data_dir / "index")
    shutil.copytree(saved, data_dir / "index")  # as if the process died after commit, before saving

    embedder = HashingEmbedder()
    restarted = _kb(database, data_dir, embedder)
    assert restarted.search("umbrella lifetime guarantee", k=1)[0].source.endswith("umbrellas.md")
    assert all("Zephyr" not in h.text for h in restarted.search("carrier Zephyr", k=10))
    assert sorted(restarted.index.ids().tolist()) == sorted(_sql_chunk_ids(database))
    assert embedder.texts_embedded == 2  # the 2 queries: the missing chunks' vectors are in SQL


def _sql_chunk_ids(database: Database) -> list[int]:
    with database.session() as session:
        return list(session.scalars(select(ChunkRow.id)))


def test_corrupted_index_is_detected_and_rebuild_repairs_it(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    _kb(database, data_dir).ingest([_write(tmp_path / "docs")])
    meta = VectorIndex.read_meta(data_dir / "index")
    assert meta is not None
    path = data_dir / "index" / meta.file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    broken = _kb(database, data_dir)
    with pytest.raises(IndexCorrupted, match="kb rebuild"):
        broken.search("gift wrapping", k=1)
    assert broken.rebuild() == broken.count()[1]
    assert (
        _kb(database, data_dir).search("gift wrapping euros", k=1)[0].source.endswith("notes.txt")
    )


def test_another_embedding_model_is_a_clear_error(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    _kb(database, data_dir).ingest([_write(tmp_path / "docs")])
    with pytest.raises(IndexMismatch, match=r"hashing-test \(256d\).*128d.*kb rebuild"):
        _kb(database, data_dir, HashingEmbedder(dimension=128)).search("gift", k=1)


def test_versions_grow_and_are_stamped_on_hits(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _write(tmp_path / "docs")
    v1 = kb.ingest([docs]).kb_version
    (docs / "notes.txt").write_text("Gift wrapping is now free.\n")
    v2 = kb.ingest([docs]).kb_version
    versions = {Path(d.source).name: d.kb_version for d in kb.documents()}
    assert v2 > v1 == versions["returns.md"] and versions["notes.txt"] == v2
    assert kb.search("gift wrapping free", k=1)[0].kb_version == v2 == kb.version()


def test_the_index_becomes_ivf_when_large_and_flat_again_when_small(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    kb = _kb(database, data_dir, flat_limit=100)
    faq = tmp_path / "docs" / "many.jsonl"
    faq.parent.mkdir()
    faq.write_text(
        "\n".join(
            json.dumps(
                {
                    "question": f"What is part {n} made of?",
                    "answer": f"Part {n} is made of alloy{n}.",
                }
            )
            for n in range(300)
        )
    )
    (tmp_path / "docs" / "small.md").write_text(
        "# Umbrellas\n\nEvery umbrella has a lifetime guarantee.\n"
    )
    kb.ingest([tmp_path / "docs"])
    assert kb.stats().index.startswith("IVF")
    assert (
        _kb(database, data_dir, flat_limit=100)
        .search("umbrella lifetime guarantee", k=1)[0]
        .source.endswith("small.md")
    )
    kb.remove([faq])
    assert kb.stats().index == "Flat (exact)" and len(kb.index) == 1


def test_document_listing_and_stats(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest([files.write_all(tmp_path / "docs")])
    listing = {Path(d.source).name: d for d in kb.documents()}
    assert listing["faq.csv"].chunks == 2 and listing["faq.csv"].kind == "faq"
    assert listing["loyalty.pdf"].kind == "pdf" and listing["warranty.html"].kind == "html"
    stats = kb.stats()
    assert (stats.documents, stats.chunks, stats.vectors) == (7, kb.count()[1], kb.count()[1])
    assert (
        stats.backend == "cpu" and stats.index_bytes > 0 and stats.embedding_model == "hashing-test"
    )


def test_hybrid_and_vector_modes_respect_the_threshold(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest([_write(tmp_path / "docs")])
    for mode in ("hybrid", "vector"):
        assert kb.search("quantum chromodynamics lattice", k=3, min_score=0.2, mode=mode) == []
        assert kb.search("which carrier ships parcels", k=3, min_score=0.2, mode=mode)[
            0
        ].source.endswith("shipping.md")


def test_two_processes_ingesting_leave_an_index_that_holds_both(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    first, second = _kb(database, data_dir, refresh_s=0.0), _kb(database, data_dir, refresh_s=0.0)
    assert len(first.index) == len(second.index) == 0  # both loaded before either ingests
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "umbrellas.md").write_text(
        "# Umbrellas\n\nEvery umbrella has a lifetime guarantee.\n"
    )
    (tmp_path / "b" / "kettles.md").write_text(
        "# Kettles\n\nKettles must be descaled every month.\n"
    )
    first.ingest([tmp_path / "a"])
    # saved last, without the umbrellas: must not claim the newest version
    second.ingest([tmp_path / "b"])
    assert second.search("umbrella lifetime guarantee", k=1)[0].source.endswith("umbrellas.md")
    third = _kb(database, data_dir)
    assert third.search("umbrella lifetime guarantee", k=1)[0].source.endswith("umbrellas.md")
    assert third.search("kettles descaled", k=1)[0].source.endswith("kettles.md")
    assert sorted(third.index.ids().tolist()) == sorted(_sql_chunk_ids(database))


def test_an_index_of_the_older_format_is_rebuilt_from_sql(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    kb = _kb(database, data_dir)
    kb.ingest([_write(tmp_path / "docs")])
    folder = data_dir / "index"
    for old in folder.iterdir():
        old.unlink()
    (folder / "vectors.faiss").write_bytes(b"old format")
    (folder / "vectors.json").write_text(
        json.dumps({"embedding_model": "hashing-test", "dimension": 256, "count": 3, "sha256": "x"})
    )
    restarted = _kb(database, data_dir)
    assert restarted.search("gift wrapping euros", k=1)[0].source.endswith("notes.txt")
    assert len(restarted.index) == restarted.count()[1]
    assert not (folder / "vectors.faiss").exists()
