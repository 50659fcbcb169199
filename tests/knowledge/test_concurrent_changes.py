"""Ingest and removal while turns search, in the same process and in another on the same database:
no search fails, every search's hits come from one version of the knowledge base, and another
process serves a change from the vectors SQL stores, without embedding them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant_core.db import Database, rowcount
from knowledge.base import KnowledgeBase, Retrieval
from tests.conftest import REPO
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.unit

GENERATIONS = 12
QUERY = "warranty parcels refund carrier"
GEN = re.compile(r"gen(\d+)")

WRITER = """
import json, sys
from pathlib import Path
from assistant_core.db import Database, rowcount
from knowledge.base import KnowledgeBase
from tests.fakes import HashingEmbedder
from tests.knowledge.test_concurrent_changes import run_writer

url, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
database = Database(url)
kb = KnowledgeBase(database.session, HashingEmbedder(), folder / "index")
states = run_writer(kb, folder / "docs")
out.write_text(json.dumps(states))
database.close()
"""


def _document(name: str, generation: int) -> str:
    """A document of several passages, each naming its generation."""
    return "\n\n".join(
        f"## {name} part {part}\n\n{name} gen{generation} covers the warranty, parcels, the "
        f"refund and the carrier, part {part} of {name}."
        for part in range(4)
    )


def run_writer(kb: KnowledgeBase, folder: Path) -> dict[str, dict[str, int]]:
    """Rewrite, add and remove documents; returns each version's documents and generations."""
    folder.mkdir(parents=True, exist_ok=True)
    states: dict[str, dict[str, int]] = {str(kb.version()): {}}
    present: dict[str, int] = {}
    for generation in range(1, GENERATIONS + 1):
        names = ["alpha", "beta"] if generation % 3 else ["alpha"]
        for name in names:
            path = folder / f"{name}.md"
            path.write_text(f"# {name}\n\n{_document(name, generation)}\n")
            version = kb.ingest([path]).kb_version
            present[str(path.resolve())] = generation
            states[str(version)] = dict(present)
        if generation % 3 == 0:  # beta leaves now and then, and comes back
            gone = str((folder / "beta.md").resolve())
            if kb.remove([gone]):
                present.pop(gone, None)
                states[str(kb.version())] = dict(present)
    return states


def _search_until(
    kb: KnowledgeBase, done: Callable[[], bool], results: list[Retrieval], errors: list[str]
) -> None:
    while not done():
        try:
            results.append(kb.retrieve(QUERY, k=6))
        except Exception as err:  # noqa: BLE001 - the test reports every failure
            errors.append(repr(err))


def _assert_consistent(results: list[Retrieval], states: dict[str, dict[str, int]]) -> int:
    """Every result's hits are one version's documents at that version's generation; returns the
    number of results with hits."""
    with_hits = 0
    for result in results:
        if not result.hits:
            continue
        with_hits += 1
        versions = {hit.kb_version for hit in result.hits}
        assert len(versions) == 1, f"hits of several versions: {versions}"
        state = states[str(versions.pop())]
        for hit in result.hits:
            match = GEN.search(hit.text)
            assert match is not None
            assert state.get(hit.source) == int(match.group(1)), (
                f"{hit.source} gen{match.group(1)} is not in that version: {state}"
            )
        assert len(result.hits) == min(6, 4 * len(state)), "a search lost passages"
    return with_hits


def test_searches_in_the_same_process_see_whole_versions(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    kb = KnowledgeBase(database.session, HashingEmbedder(), data_dir / "index", refresh_s=0.0)
    finished = threading.Event()
    results: list[Retrieval] = []
    errors: list[str] = []
    searchers = [
        threading.Thread(target=_search_until, args=(kb, finished.is_set, results, errors))
        for _ in range(3)
    ]
    for searcher in searchers:
        searcher.start()
    try:
        states = run_writer(kb, tmp_path / "docs")
    finally:
        finished.set()
        for searcher in searchers:
            searcher.join(60)
    assert errors == []
    assert _assert_consistent(results, states) > 0
    assert {str(hit.kb_version) for r in results for hit in r.hits} - states.keys() == set()


def test_another_process_changes_are_served_without_embedding(
    postgres_url: str, data_dir: Path, tmp_path: Path
) -> None:
    database = Database(postgres_url)
    embedder = HashingEmbedder()
    kb = KnowledgeBase(database.session, embedder, data_dir / "index", refresh_s=0.2)
    out = tmp_path / "states.json"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, postgres_url, str(tmp_path / "writer"), str(out)],
        cwd=REPO,
    )
    results: list[Retrieval] = []
    errors: list[str] = []
    searchers = [
        threading.Thread(
            target=_search_until, args=(kb, lambda: writer.poll() is not None, results, errors)
        )
        for _ in range(2)
    ]
    for searcher in searchers:
        searcher.start()
    for searcher in searchers:
        searcher.join(120)
    assert writer.wait(10) == 0
    states = json.loads(out.read_text())
    assert errors == []
    assert _assert_consistent(results, states) > 0
    final = max(int(v) for v in states)
    deadline = time.monotonic() + 30
    while kb.retrieve(QUERY, k=6).hits[0].kb_version != final:  # within refresh_s of the change
        assert time.monotonic() < deadline, "the other process's last change is never served"
    assert embedder.texts_embedded == embedder.calls, "only queries were embedded here"
    database.close()


def test_chunks_stored_before_vectors_are_embedded_once_and_stored(
    database: Database, data_dir: Path, tmp_path: Path
) -> None:
    from sqlalchemy import func, select, update

    from knowledge.records import ChunkRow

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "alpha.md").write_text(f"# alpha\n\n{_document('alpha', 1)}\n")
    KnowledgeBase(database.session, HashingEmbedder(), data_dir / "index").ingest([folder])
    with database.session.begin() as session:  # as a database migrated from before revision 0009
        chunks = rowcount(session.execute(update(ChunkRow).values(vector=None)))
    first, second = HashingEmbedder(), HashingEmbedder()
    host_a = KnowledgeBase(database.session, first, tmp_path / "host-a")
    assert len(host_a.search(QUERY, k=6)) == 4
    assert first.texts_embedded == chunks + 1
    with database.session() as session:
        unstored = session.scalar(
            select(func.count()).select_from(ChunkRow).where(ChunkRow.vector.is_(None))
        )
    assert unstored == 0
    host_b = KnowledgeBase(database.session, second, tmp_path / "host-b")
    assert len(host_b.search(QUERY, k=6)) == 4
    assert second.texts_embedded == 1, "the other host only embeds its query"
