"""The knowledge base: documents, chunks and their vectors in SQL, searched through FAISS.

SQL is the source of truth, vectors included. Each change commits its rows (with their vectors)
and bumps the knowledge-base version in one transaction; only then is the in-memory index changed,
and it is saved once per batch with the version it reflects. An index whose version differs from
SQL's (a crash between commit and save, another process's or host's change) is brought to SQL's
version: extra ids are removed, missing ones are added from the vectors SQL stores, without
embedding. Every process checks the version every `refresh_s` (default 2 s), so a change made
anywhere is searched everywhere within that plus the time to read the changed vectors.

Each process holds, with its index, the passages (text, heading, document) of the chunks in it,
read from SQL in the same query as their vectors; a catch-up is applied only when no change
committed while its rows were read. Searches and changes of the in-memory index exclude each other
(a readers-writer lock), so a search sees one version whole and reads its passages from that
version, never from SQL that another process changed since. `rebuild` re-embeds everything
(another embedding model).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from assistant_core.db import rowcount
from knowledge.chunking import Chunker, Passage
from knowledge.embeddings import Embedder
from knowledge.errors import IndexMismatch, IndexWriteFailed, UnreadableDocument
from knowledge.index import (
    FLAT_LIMIT,
    META_FILE,
    IndexSpec,
    VectorIndex,
    choose_backend,
    choose_spec,
    gpu_available,
)
from knowledge.lexical import LexicalIndex, TermStats, reciprocal_rank_fusion
from knowledge.loaders import LOADER_VERSION, SourceDocument, iter_files, load_document
from knowledge.records import ChunkRow, DocumentRow, KnowledgeStateRow

log = logging.getLogger(__name__)

_PASSAGES = (
    select(
        ChunkRow.id,
        ChunkRow.vector,
        ChunkRow.text,
        ChunkRow.heading,
        ChunkRow.position,
        DocumentRow.source,
        DocumentRow.title,
        DocumentRow.url,
    )
    .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
    .where(ChunkRow.id.in_(bindparam("ids", expanding=True)))
)
"""Built once: passages with their vectors by chunk id (columns, not ORM objects)."""


@dataclass(frozen=True, slots=True)
class _Passage:
    """What a hit shows of a chunk, held in memory with its vector: a chunk id's passage never
    changes (a changed document gets new chunk ids), so a search reads it from the version it
    searched, never from SQL that another process may have changed since."""

    text: str
    heading: str
    position: int
    source: str
    title: str
    url: str


Progress = Callable[[str, int], None]
"""Called with (file name, chunks added) after each file."""


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from and how well it matched.

    `score` is the cosine similarity of passage and query, whichever list (vector or keyword)
    found it; hits are ordered by reciprocal rank fusion. `kb_version` is the knowledge-base
    version the passage was retrieved from.
    """

    chunk_id: int
    score: float
    text: str
    source: str
    title: str
    heading: str
    position: int = 0
    kb_version: int = 0
    vector_rank: int = 0
    """1-based rank in the vector list (0: the vector search did not find it)."""
    keyword_rank: int = 0
    """1-based rank in the BM25 list (0: no shared keyword, or vector-only retrieval)."""
    url: str = ""
    """Where a reader can open the passage's document (empty: nowhere, e.g. a local file)."""


@dataclass(frozen=True)
class Retrieval:
    """The hits of one query, plus how the query scores against this knowledge base at large:
    the relevance decision compares the best hit with this background, not with a global
    threshold, because cosines run higher in a narrow corpus than in a broad one."""

    hits: list[Hit]
    background_mean: float = 0.0
    """Mean cosine of the query with a fixed random sample of the knowledge base's passages."""
    background_std: float = 0.0

    def standout(self, hit: Hit) -> float:
        """How many standard deviations the hit's cosine lies above the background."""
        return (hit.score - self.background_mean) / max(self.background_std, 1e-3)


BACKGROUND_SAMPLE = 512
"""Passages in the background sample: enough for a stable mean and deviation, one small
matmul per query."""
BACKGROUND_MIN = 50
"""Below this many passages there is no background to stand out from (`Retrieval.standout` is
then not measured: `background_std` stays 0)."""


@dataclass
class IngestReport:
    """What one ingest run did."""

    files: int = 0
    unchanged: int = 0
    chunks: int = 0
    failed: list[str] = field(default_factory=list)
    kb_version: int = 0


@dataclass(frozen=True)
class DocumentInfo:
    """One line of `kb list`."""

    source: str
    title: str
    kind: str
    chunks: int
    ingested_at: datetime
    kb_version: int


@dataclass(frozen=True)
class Stats:
    """What `kb stats` shows."""

    documents: int
    chunks: int
    kb_version: int
    vectors: int
    index: str
    backend: str
    embedding_model: str
    dimension: int
    index_bytes: int
    retrieval: str


@dataclass
class _Pending:
    document: SourceDocument
    digest: str
    passages: list[Passage]


class KnowledgeBase:
    """Ingest files, search passages.

    >>> kb = KnowledgeBase(db.session, embedder, index_dir)
    >>> kb.ingest([Path("docs/")]).chunks
    42
    >>> kb.search("how long does shipping take?", k=3)[0].source
    '/abs/docs/shipping.md'
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        index_dir: Path,
        *,
        chunker: Chunker | None = None,
        retrieval: str = "hybrid",
        backend: str = "auto",
        flat_limit: int = FLAT_LIMIT,
        batch_chunks: int = 512,
        rrf_k: int = 60,
        refresh_s: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._index_dir = index_dir
        self._chunker = chunker or Chunker()
        self.retrieval = retrieval
        gpus, gpu_faiss = gpu_available()
        self.backend = choose_backend(backend, gpus=gpus, gpu_faiss=gpu_faiss)
        self._flat_limit = flat_limit
        self._batch_chunks = batch_chunks
        self._rrf_k = rrf_k
        self._refresh_s = refresh_s
        self._index: VectorIndex | None = None
        self._lexical: LexicalIndex | None = None
        self._background: tuple[int, NDArray[np.float32]] | None = None
        self._checked_at = 0.0
        self._passages: dict[int, _Passage] = {}
        """The passage of every chunk id in the index (changed with it, under the search lock)."""
        self._changing = threading.RLock()
        """Held by whatever changes the index (ingest, removal, catching up): one at a time."""
        self._searching = SearchLock()

    # ---- the index and its consistency with SQL

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, loaded on first use and reconciled with SQL when their versions
        differ."""
        index = self._index
        if index is not None:
            return index
        with self._changing:
            if self._index is None:
                loaded = self._load()
                self._checked_at = time.monotonic()
                self._index = self._reconcile(loaded, persist=True)
            return self._index

    def _load(self) -> VectorIndex:
        """The index file of this host; one built with another model is filled again from the
        vectors SQL stores when those are this model's (all hosts moved to a new model)."""
        try:
            return VectorIndex.load(
                self._index_dir,
                embedding_model=self._embedder.name,
                dimension=self._embedder.dimension,
                backend=self.backend,
            )
        except IndexMismatch:
            if self._stored_model() != self._model_tag:
                raise
        log.warning(
            "the index in %s was built with another model: filling it from SQL", self._index_dir
        )
        dimension = self._embedder.dimension
        return VectorIndex(self._embedder.name, dimension, backend=self.backend, kb_version=-1)

    def version(self) -> int:
        """The knowledge base's version in SQL: bumped by every ingest, removal and rebuild."""
        with self._sessions() as session:
            return _version(session)

    def _fresh_index(self, *, now: bool = False) -> VectorIndex:
        """The index, caught up with SQL if another process or host changed the knowledge base
        (checked every refresh_s, or `now`). While this process is itself changing the index the
        check is left to the next search, which then finds the change made."""
        index = self.index
        if not now and time.monotonic() - self._checked_at < self._refresh_s:
            return index
        if not self._changing.acquire(blocking=False):
            return index
        try:
            self._checked_at = time.monotonic()
            index = self.index
            if self.version() != index.kb_version:
                index = self._reconcile(index, persist=False)
            return index
        finally:
            self._changing.release()

    def _reconcile(self, index: VectorIndex, *, persist: bool) -> VectorIndex:
        """Bring the index to SQL's version from the vectors SQL stores (the caller holds
        `_changing`); `persist` saves it (at load: a start then finds it current).

        Applied only when no change committed while the rows were read, so the index holds one
        version whole; otherwise a running process keeps serving its older version and the next
        search tries again (at load, after LOAD_ATTEMPTS, what was read is served and caught up
        at the next search)."""
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            version, sql_ids = self._sql_state()
            if version == index.kb_version and len(self._passages) >= len(index):
                return index
            held = index.ids()
            extra = np.setdiff1d(held, sql_ids)
            missing = np.setdiff1d(sql_ids, held)
            unknown = [i for i in np.intersect1d(held, sql_ids).tolist() if i not in self._passages]
            known = self._read_passages(unknown, vectors=False)[1]  # at load: the file has no text
            vanished = np.array([i for i in unknown if i not in known], dtype=np.int64)
            extra = np.union1d(extra, vanished).astype(np.int64)
            ids, vectors, passages = self._stored_vectors(missing.tolist())
            passages.update(known)
            if self.version() == version:
                break
            self._checked_at = 0.0  # changed while read: what was read may lack some of it
            if not persist:
                return index
            if attempt == LOAD_ATTEMPTS:
                log.warning("the knowledge base kept changing while it was loaded; catching up")
        if len(extra) or len(missing):
            log.info(
                "index at version %d, SQL at %d: removing %d and adding %d stored vector(s)",
                index.kb_version,
                version,
                len(extra),
                len(ids),
            )
        with self._searching.writing():
            index.remove(extra)
            index.add(ids, vectors)
            self._forget_passages(extra.tolist())
            self._passages.update(passages)
            index.kb_version = version
            index = index.resized(flat_limit=self._flat_limit)
            self._index = index
        if persist and (len(extra) or len(missing) or not (self._index_dir / META_FILE).exists()):
            try:
                index.save(self._index_dir)
            except IndexWriteFailed as err:
                # serve the caught-up index from memory; the next load retries
                log.warning("%s", err)
        return index

    def _sql_state(self) -> tuple[int, NDArray[np.int64]]:
        """SQL's version and exactly its chunk ids: read again when a change commits between."""
        with self._sessions() as session:
            while True:
                version = _version(session)
                ids = np.fromiter(session.scalars(select(ChunkRow.id)), dtype=np.int64)
                if _version(session) == version:
                    return version, ids

    def _stored_vectors(
        self, ids: list[int]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], dict[int, _Passage]]:
        """The vectors and passages SQL holds for those of these chunks that still exist, read
        together. Chunks stored before vectors were are embedded once, and their vectors stored
        for every other host."""
        self._check_model()
        blobs, passages = self._read_passages(ids, vectors=True)
        dim = self._embedder.dimension
        found: list[int] = []
        rows: list[NDArray[np.float32]] = []
        unstored: list[int] = []
        for chunk_id, blob in blobs.items():
            if blob is None:
                unstored.append(chunk_id)
                continue
            if len(blob) != 4 * dim:
                raise IndexMismatch(
                    f"a stored vector has {len(blob) // 4} dimensions but the embedding model "
                    f"{self._embedder.name} makes {dim}; run `assistant kb rebuild`"
                )
            found.append(chunk_id)
            rows.append(np.frombuffer(blob, dtype=np.float32))
        step = max(self._batch_chunks, 1)
        for start in range(0, len(unstored), step):
            batch = unstored[start : start + step]
            vectors = self._embedder.embed(
                [_embedding_text(passages[i].heading, passages[i].text) for i in batch]
            )
            self._store_vectors(batch, vectors)
            found += batch
            rows += list(vectors)
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32), passages
        return np.array(found, dtype=np.int64), np.vstack(rows).astype(np.float32), passages

    def _read_passages(
        self, ids: list[int], *, vectors: bool
    ) -> tuple[dict[int, bytes | None], dict[int, _Passage]]:
        """(vectors, passages) of those of these chunks that exist, a batch at a time."""
        blobs: dict[int, bytes | None] = {}
        passages: dict[int, _Passage] = {}
        step = max(self._batch_chunks, 1)
        query = (
            _PASSAGES
            if vectors
            else _PASSAGES.with_only_columns(
                *[c for c in _PASSAGES.selected_columns if c.name != "vector"]
            )
        )
        for start in range(0, len(ids), step):
            with self._sessions() as session:
                rows = session.execute(query, {"ids": ids[start : start + step]}).all()
            for row in rows:
                if vectors:
                    blobs[row.id] = row.vector
                passages[row.id] = _Passage(
                    row.text, row.heading, row.position, row.source, row.title, row.url
                )
        return blobs, passages

    def _forget_passages(self, ids: Iterable[int]) -> None:
        for chunk_id in ids:
            self._passages.pop(chunk_id, None)

    def _store_vectors(self, ids: list[int], vectors: NDArray[np.float32]) -> None:
        """Keep vectors computed outside an ingest (older rows, rebuild) for every other host."""
        if not ids:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(ChunkRow),
                [{"id": i, "vector": _blob(v)} for i, v in zip(ids, vectors, strict=True)],
            )
            _claim_model(session, self._model_tag)

    @property
    def _model_tag(self) -> str:
        """Names the vectors this process makes: model and dimension."""
        return f"{self._embedder.name} ({self._embedder.dimension}d)"

    def _stored_model(self) -> str:
        with self._sessions() as session:
            stored = session.scalar(
                select(KnowledgeStateRow.embedding_model).where(KnowledgeStateRow.id == 1)
            )
        return stored or ""

    def _check_model(self) -> None:
        """Stored vectors made by another embedding model mean nothing to this one."""
        stored = self._stored_model()
        if stored and stored != self._model_tag:
            raise _model_mismatch(stored, self._model_tag)

    def _texts(self, ids: list[int] | None) -> Iterator[tuple[list[int], list[str]]]:
        """(ids, embedding texts) of these chunks (all when None), a batch at a time."""
        step = max(self._batch_chunks, 1)
        if ids is not None:
            for start in range(0, len(ids), step):
                wanted = ids[start : start + step]
                with self._sessions() as session:
                    rows = session.execute(
                        select(ChunkRow.id, ChunkRow.heading, ChunkRow.text).where(
                            ChunkRow.id.in_(wanted)
                        )
                    ).all()
                yield [r.id for r in rows], [_embedding_text(r.heading, r.text) for r in rows]
            return
        with self._sessions() as session:
            query = select(ChunkRow.id, ChunkRow.heading, ChunkRow.text).order_by(ChunkRow.id)
            batch: list[tuple[int, str, str]] = []
            for row in session.execute(query.execution_options(yield_per=step)):
                batch.append((row.id, row.heading, row.text))
                if len(batch) >= step:
                    yield [b[0] for b in batch], [_embedding_text(b[1], b[2]) for b in batch]
                    batch = []
            if batch:
                yield [b[0] for b in batch], [_embedding_text(b[1], b[2]) for b in batch]

    def _save(self) -> None:
        with self._changing:
            assert self._index is not None
            with self._searching.writing():
                self._index = self._index.resized(flat_limit=self._flat_limit)
                self._lexical = None
            self._index.save(self._index_dir)

    # ---- ingestion

    def ingest(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        """Add or replace each file's chunks; unchanged files are skipped, unreadable ones
        reported."""
        report = IngestReport()
        files = self._files(paths, report)
        index = self.index
        with self._sessions() as session:
            known = dict(
                session.execute(select(DocumentRow.source, DocumentRow.content_hash)).tuples().all()
            )
        pending: list[_Pending] = []
        waiting, changed = 0, False
        try:
            for path in files:
                item = self._prepare(path, known, report)
                if item is None:
                    if progress:
                        progress(path.name, 0)
                    continue
                pending.append(item)
                waiting += len(item.passages)
                if waiting >= self._batch_chunks:
                    changed |= self._commit(pending, report, progress)
                    pending, waiting = [], 0
            if pending:
                changed |= self._commit(pending, report, progress)
        finally:
            if changed:
                self._save()
        report.kb_version = report.kb_version or index.kb_version
        return report

    def _files(self, paths: Iterable[Path], report: IngestReport) -> list[Path]:
        files: dict[str, Path] = {}
        for path in paths:
            try:
                for found in iter_files([path]):
                    files.setdefault(str(found.resolve()), found)
            except UnreadableDocument as err:
                report.failed.append(str(err))
        return list(files.values())

    def _prepare(self, path: Path, known: dict[str, str], report: IngestReport) -> _Pending | None:
        """Read, hash and chunk one file; None when it is unchanged or unreadable (then
        reported)."""
        try:
            raw = path.read_bytes()
        except OSError as err:
            report.failed.append(f"{path}: {err}")
            return None
        digest = hashlib.sha256(
            raw + f"|{LOADER_VERSION}|{self._chunker.fingerprint}".encode()
        ).hexdigest()
        if known.get(str(path.resolve())) == digest:
            report.files += 1
            report.unchanged += 1
            return None
        try:
            document = load_document(path, raw)
        except UnreadableDocument as err:
            report.failed.append(str(err))
            return None
        passages = self._chunker.split(document)
        if not passages:
            report.failed.append(f"{path}: no text to index")
            return None
        return _Pending(document, digest, passages)

    def _commit(
        self,
        pending: list[_Pending],
        report: IngestReport,
        progress: Progress | None,
    ) -> bool:
        """Embed a group of files, commit their rows and a new version, then change the index."""
        texts = [_embedding_text(p.heading, p.text) for item in pending for p in item.passages]
        vectors = self._embedder.embed(texts)
        with self._changing:
            index = self.index  # caught up since the ingest began, perhaps
            version = self._store(pending, vectors, index)
        report.kb_version = version
        for item in pending:
            report.files += 1
            report.chunks += len(item.passages)
            if progress:
                progress(Path(item.document.source).name, len(item.passages))
        return True

    def _store(
        self, pending: list[_Pending], vectors: NDArray[np.float32], index: VectorIndex
    ) -> int:
        """Commit the files' rows, their vectors and a new version, then change the index."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            version = _bump(session)
            _claim_model(session, self._model_tag)
            sources = [item.document.source for item in pending]
            rows = {
                r.source: r
                for r in session.scalars(select(DocumentRow).where(DocumentRow.source.in_(sources)))
            }
            replaced = [r.id for r in rows.values()]
            old_ids = session.scalars(
                select(ChunkRow.id).where(ChunkRow.document_id.in_(replaced))
            ).all()
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(replaced)))
            for item in pending:
                doc = item.document
                row = rows.get(doc.source) or DocumentRow(source=doc.source)
                row.title, row.content_hash, row.ingested_at = doc.title, item.digest, now
                row.kind, row.kb_version, row.url = doc.kind, version, doc.url
                rows[doc.source] = row
                session.add(row)
            session.flush()
            passages = [(item, p) for item in pending for p in item.passages]
            new_rows = [
                ChunkRow(
                    document_id=rows[item.document.source].id,
                    position=p.position,
                    heading=p.heading,
                    text=p.text,
                    vector=_blob(vector),
                )
                for (item, p), vector in zip(passages, vectors, strict=True)
            ]
            session.add_all(new_rows)
            session.flush()
            new_ids = np.array([c.id for c in new_rows], dtype=np.int64)
        added = {
            int(chunk_id): _Passage(
                p.text,
                p.heading,
                p.position,
                item.document.source,
                item.document.title,
                item.document.url,
            )
            for chunk_id, (item, p) in zip(new_ids, passages, strict=True)
        }
        if version != index.kb_version + 1:  # another process committed since: catch up from SQL
            self._reconcile(index, persist=False)
            return version
        with self._searching.writing():
            index.remove(np.array(old_ids, dtype=np.int64))
            index.add(new_ids, vectors)
            self._forget_passages(old_ids)
            self._passages.update(added)
            index.kb_version = version
        return version

    def ingest_documents(
        self, documents: Iterable[tuple[SourceDocument, bytes]], progress: Progress | None = None
    ) -> IngestReport:
        """Add or replace documents read elsewhere (web pages), each with the bytes that identify
        its content: unchanged ones embed nothing, as unchanged files do."""
        report = IngestReport()
        index = self.index
        with self._sessions() as session:
            known = dict(
                session.execute(select(DocumentRow.source, DocumentRow.content_hash)).tuples().all()
            )
        pending: list[_Pending] = []
        changed = False
        try:
            for document, content in documents:
                digest = hashlib.sha256(
                    content + f"|{LOADER_VERSION}|{self._chunker.fingerprint}".encode()
                ).hexdigest()
                if known.get(document.source) == digest:
                    report.files += 1
                    report.unchanged += 1
                    continue
                passages = self._chunker.split(document)
                if not passages:
                    report.failed.append(f"{document.source}: no text to index")
                    continue
                pending.append(_Pending(document, digest, passages))
                if sum(len(p.passages) for p in pending) >= self._batch_chunks:
                    changed |= self._commit(pending, report, progress)
                    pending = []
            if pending:
                changed |= self._commit(pending, report, progress)
        finally:
            if changed:
                self._save()
        report.kb_version = report.kb_version or index.kb_version
        return report

    # ---- maintenance

    def remove(self, paths: Sequence[str | Path] = (), *, missing: bool = False) -> list[str]:
        """Forget documents (a file, or every file under a folder; a web page, or every page under
        a URL; with `missing`, files gone from disk).

        Their chunks leave SQL and their vectors leave the index. Returns the sources removed.
        """
        wanted = [_wanted_source(p) for p in paths]
        return self._delete(
            lambda source: (
                any(source == w or source.startswith(_folder(w)) for w in wanted)
                or (missing and not is_url(source) and not Path(source).exists())
            )
        )

    def forget(self, sources: Iterable[str]) -> list[str]:
        """Remove exactly these documents (web pages gone from their site); returns those
        removed."""
        exact = set(sources)
        return self._delete(exact.__contains__) if exact else []

    def _delete(self, chosen_by: Callable[[str], bool]) -> list[str]:
        with self._changing:
            return self._delete_now(chosen_by)

    def _delete_now(self, chosen_by: Callable[[str], bool]) -> list[str]:
        index = self.index
        with self._sessions.begin() as session:
            rows = session.execute(select(DocumentRow.id, DocumentRow.source)).all()
            chosen = [(doc_id, source) for doc_id, source in rows if chosen_by(source)]
            if not chosen:
                return []
            doc_ids = [doc_id for doc_id, _ in chosen]
            chunk_ids = session.scalars(
                select(ChunkRow.id).where(ChunkRow.document_id.in_(doc_ids))
            ).all()
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(doc_ids)))
            session.execute(delete(DocumentRow).where(DocumentRow.id.in_(doc_ids)))
            version = _bump(session)
        if version != index.kb_version + 1:  # another process committed since: catch up from SQL
            self._reconcile(index, persist=False)
        else:
            with self._searching.writing():
                index.remove(np.array(chunk_ids, dtype=np.int64))
                self._forget_passages(chunk_ids)
                index.kb_version = version
        self._save()
        return sorted(source for _, source in chosen)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk from SQL into a new index of the structure its size calls for.

        Works when the index on disk is corrupted or was built with another model. Returns the
        number of vectors.
        """
        with self._sessions.begin() as session:
            version = _bump(session)
            total = session.scalar(select(func.count()).select_from(ChunkRow)) or 0
        ids: list[NDArray[np.int64]] = []
        vectors: list[NDArray[np.float32]] = []
        with self._sessions.begin() as session:
            _claim_model(session, self._model_tag, force=True)
        for batch_ids, texts in self._texts(None):
            ids.append(np.array(batch_ids, dtype=np.int64))
            vectors.append(self._embedder.embed(texts))
            self._store_vectors(batch_ids, vectors[-1])
            if progress:
                progress(sum(len(i) for i in ids), total)
        all_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        dim = self._embedder.dimension
        all_vectors = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
        spec = choose_spec(len(all_ids), flat_limit=self._flat_limit)
        rebuilt = VectorIndex.build(
            self._embedder.name,
            all_ids,
            all_vectors,
            spec=spec,
            backend=self.backend,
            kb_version=version,
        )
        passages = self._read_passages(all_ids.tolist(), vectors=False)[1]
        with self._changing:
            with self._searching.writing():
                self._index, self._lexical, self._passages = rebuilt, None, passages
            rebuilt.save(self._index_dir)
        return len(all_ids)

    # ---- retrieval

    def search(
        self, query: str, *, k: int = 3, min_score: float = -1.0, mode: str | None = None
    ) -> list[Hit]:
        """The k best passages for the query, best first; only those with cosine >= `min_score`.

        Hybrid mode fuses the FAISS ranking with a BM25 ranking by reciprocal rank fusion; the
        threshold applies to each passage's cosine similarity, so an empty list means nothing
        relevant, whichever way the passages were found.
        """
        return self.retrieve(query, k=k, min_score=min_score, mode=mode).hits

    def retrieve(
        self, query: str, *, k: int = 3, min_score: float = -1.0, mode: str | None = None
    ) -> Retrieval:
        """`search`, with each hit's rank in both lists and the query's background scores."""
        if not query.strip() or k <= 0:
            return Retrieval([])
        if len(self._fresh_index()) == 0:
            return Retrieval([])
        query_vector = self._embedder.embed([query])
        for _ in range(SEARCH_ATTEMPTS - 1):
            retrieval, whole = self._retrieve_once(query, query_vector, k, min_score, mode)
            if whole:
                return retrieval
            # passages deleted since this index's version: catch up (waiting for a change this
            # process is applying) and search again
            with self._changing:
                self._fresh_index(now=True)
        return self._retrieve_once(query, query_vector, k, min_score, mode)[0]

    def _retrieve_once(
        self,
        query: str,
        query_vector: NDArray[np.float32],
        k: int,
        min_score: float,
        mode: str | None,
    ) -> tuple[Retrieval, bool]:
        """One search of one version of the index; False when some of its passages are gone."""
        with self._searching.reading():
            index = self._index
            if index is None or len(index) == 0:
                return Retrieval([]), True
            version = index.kb_version
            depth = max(4 * k, 20)
            vector_hits = index.search(query_vector, depth)[0]
            cosine = dict(vector_hits)
            rankings = [[i for i, _ in vector_hits]]
            if (mode or self.retrieval) == "hybrid":
                keyword = [i for i, _ in self._keyword_index(index).search(query, depth)]
                rankings.append(keyword)
                stored = index.reconstruct([i for i in keyword if i not in cosine])
                cosine.update((i, float(vector @ query_vector[0])) for i, vector in stored.items())
            background = (
                self._background_sample(index) @ query_vector[0]
                if len(index) >= BACKGROUND_MIN
                else None
            )
            fused = [
                i
                for i, _ in reciprocal_rank_fusion(rankings, k=self._rrf_k)
                if cosine.get(i, -2.0) >= min_score
            ]
            hits = self._hits(fused[:k], cosine, version, rankings)
        whole = len(hits) == len(fused[:k])
        if background is None:
            return Retrieval(hits), whole
        return Retrieval(hits, float(background.mean()), float(background.std())), whole

    def term_stats(self) -> TermStats:
        """How often each word occurs in the passages: a question about a word the knowledge
        base never uses is one it cannot answer."""
        self._fresh_index()
        with self._searching.reading():
            index = self._index
            if index is None or not len(index):
                return TermStats(0, {})
            return self._keyword_index(index).terms

    def _background_sample(self, index: VectorIndex) -> NDArray[np.float32]:
        """A fixed random sample of the stored vectors, drawn again when the version changes."""
        if self._background is None or self._background[0] != index.kb_version:
            ids = index.ids()
            rng = np.random.default_rng(index.kb_version)
            chosen = rng.choice(ids, size=min(BACKGROUND_SAMPLE, len(ids)), replace=False)
            vectors = index.reconstruct(chosen.tolist())
            sample = np.array(list(vectors.values()), dtype=np.float32)
            self._background = (index.kb_version, sample.reshape(-1, index.dimension))
        return self._background[1]

    def _keyword_index(self, index: VectorIndex) -> LexicalIndex:
        if self._lexical is None or self._lexical.version != index.kb_version:
            ids = sorted(i for i in index.ids().tolist() if i in self._passages)  # this version
            texts = [
                _embedding_text(self._passages[i].heading, self._passages[i].text) for i in ids
            ]
            self._lexical = LexicalIndex(
                np.array(ids, dtype=np.int64), texts, version=index.kb_version
            )
        return self._lexical

    def _hits(
        self,
        ids: list[int],
        cosine: dict[int, float],
        version: int,
        rankings: Sequence[Sequence[int]] = (),
    ) -> list[Hit]:
        if not ids:
            return []
        by_id = self._passages  # the caller holds the search lock
        ranks = [{chunk: n for n, chunk in enumerate(r, start=1)} for r in rankings]
        vector_ranks, keyword_ranks = (ranks + [{}, {}])[:2]
        return [
            Hit(
                i,
                cosine[i],
                r.text,
                r.source,
                r.title,
                r.heading,
                r.position,
                version,
                vector_ranks.get(i, 0),
                keyword_ranks.get(i, 0),
                r.url,
            )
            for i in ids
            if (r := by_id.get(i)) is not None
        ]

    # ---- reporting

    def count(self) -> tuple[int, int]:
        """(documents, chunks) in the knowledge base."""
        with self._sessions() as session:
            documents = session.scalar(select(func.count()).select_from(DocumentRow)) or 0
            chunks = session.scalar(select(func.count()).select_from(ChunkRow)) or 0
        return documents, chunks

    def documents(self) -> list[DocumentInfo]:
        """Every ingested document with its chunk count, by source."""
        counts = (
            select(ChunkRow.document_id, func.count().label("n"))
            .group_by(ChunkRow.document_id)
            .subquery()
        )
        with self._sessions() as session:
            rows = session.execute(
                select(DocumentRow, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.document_id == DocumentRow.id)
                .order_by(DocumentRow.source)
            ).all()
        return [
            DocumentInfo(d.source, d.title, d.kind, int(n), d.ingested_at, d.kb_version)
            for d, n in rows
        ]

    def stats(self) -> Stats:
        documents, chunks = self.count()
        index = self.index
        meta = VectorIndex.read_meta(self._index_dir)
        size = (
            (self._index_dir / meta.file).stat().st_size
            if meta and (self._index_dir / meta.file).exists()
            else 0
        )
        return Stats(
            documents,
            chunks,
            self.version(),
            len(index),
            index.spec.describe(),
            index.backend,
            self._embedder.name,
            self._embedder.dimension,
            size,
            self.retrieval,
        )


LOAD_ATTEMPTS = 5
"""Reads of the changed rows at load while other processes keep committing."""
SEARCH_ATTEMPTS = 3
"""Searches of one query when passages vanish under it (deleted by a change the index had not
caught up with yet); the last attempt's hits are returned, all of them from one version."""


class SearchLock:
    """Many searches at once, or one change of the in-memory index: no search sees half a change.
    Writers go first, so a stream of searches cannot hold a change back.

    >>> lock = SearchLock()
    >>> with lock.reading(): ...
    """

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._readers = 0
        self._writers = 0  # waiting or writing
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._turn:
            while self._writers:
                self._turn.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._turn:
                self._readers -= 1
                if not self._readers:
                    self._turn.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._turn:
            self._writers += 1
            while self._writing or self._readers:
                self._turn.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._turn:
                self._writing = False
                self._writers -= 1
                self._turn.notify_all()


def _blob(vector: NDArray[np.float32]) -> bytes:
    """A vector as SQL stores it: float32 bytes, little-endian on every host we run on."""
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _claim_model(session: Session, tag: str, *, force: bool = False) -> None:
    """Record which model makes the stored vectors; refuse to mix in another's (unless a rebuild
    replaces them all: `force`)."""
    state = session.get(KnowledgeStateRow, 1, with_for_update=True)
    if state is None:
        state = KnowledgeStateRow(id=1, version=0)
        session.add(state)
        session.flush()
    stored = state.embedding_model
    if stored == tag:
        return
    if stored and not force:
        raise _model_mismatch(stored, tag)
    state.embedding_model = tag


def _model_mismatch(stored: str, tag: str) -> IndexMismatch:
    return IndexMismatch(
        f"the knowledge base's vectors were made with {stored} but this process embeds with "
        f"{tag}: every host must use one embedding model (ASSISTANT_EMBEDDING_MODEL); after "
        "changing it, run `assistant kb rebuild` once"
    )


def _version(session: Session) -> int:
    return int(
        session.scalar(select(KnowledgeStateRow.version).where(KnowledgeStateRow.id == 1)) or 0
    )


def _bump(session: Session) -> int:
    """Increment the version inside the caller's transaction (row-locked on PostgreSQL)."""
    result = session.execute(
        update(KnowledgeStateRow)
        .where(KnowledgeStateRow.id == 1)
        .values(version=KnowledgeStateRow.version + 1)
    )
    if rowcount(result) == 0:
        session.add(KnowledgeStateRow(id=1, version=1))
        session.flush()
    return _version(session)


def is_url(source: str) -> bool:
    """A web page's source is its URL; every other source is a file path."""
    return source.startswith(("http://", "https://"))


def _wanted_source(target: str | Path) -> str:
    text = str(target)
    return text if is_url(text) else str(Path(text).expanduser().resolve())


def _folder(source: str) -> str:
    """What every source under this one starts with (a folder, or a URL's path)."""
    separator = "/" if is_url(source) else os.sep
    return source.rstrip(separator) + separator


def _embedding_text(heading: str, text: str) -> str:
    """Prefix the heading path so a passage's topic is in its vector even when its text omits it."""
    return f"{heading}\n{text}" if heading and heading not in text else text


__all__ = ["DocumentInfo", "Hit", "IndexSpec", "IngestReport", "KnowledgeBase", "Stats"]
