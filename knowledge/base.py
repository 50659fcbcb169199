"""The knowledge base: documents and chunks in SQL, their vectors in FAISS, kept in step."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.chunking import Chunker
from knowledge.embeddings import Embedder
from knowledge.errors import UnreadableDocument
from knowledge.index import VectorIndex
from knowledge.loaders import SourceDocument, iter_files, load_document
from knowledge.records import ChunkRow, DocumentRow

Progress = Callable[[str, int], None]
"""Called with (file name, chunks added) after each file."""


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from and how well it matched."""

    chunk_id: int
    score: float
    text: str
    source: str
    title: str
    heading: str


@dataclass
class IngestReport:
    """What one ingest run did."""

    files: int = 0
    unchanged: int = 0
    chunks: int = 0
    failed: list[str] = field(default_factory=list)


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
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._index_dir = index_dir
        self._chunker = chunker or Chunker()
        self.index = VectorIndex.load(index_dir, embedding_model=embedder.name, dimension=embedder.dimension)

    def ingest(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        """Add or replace each file's chunks; unchanged files are skipped, unreadable ones reported."""
        report = IngestReport()
        try:
            files = list(iter_files(paths))
        except UnreadableDocument as err:
            report.failed.append(str(err))
            return report
        for path in files:
            try:
                document = load_document(path)
            except UnreadableDocument as err:
                report.failed.append(str(err))
                continue
            added = self._ingest_one(document)
            report.files += 1
            report.unchanged += added is None
            report.chunks += added or 0
            if progress:
                progress(path.name, added or 0)
        return report

    def _ingest_one(self, document: SourceDocument) -> int | None:
        digest = hashlib.sha256(document.text.encode()).hexdigest()
        passages = self._chunker.split(document)
        with self._sessions.begin() as session:
            existing = session.scalar(select(DocumentRow).where(DocumentRow.source == document.source))
            if existing is not None and existing.content_hash == digest:
                return None
            old_ids = self._drop_chunks(session, existing) if existing else []
            row = existing or DocumentRow(source=document.source)
            row.title, row.content_hash, row.ingested_at = document.title, digest, datetime.now(UTC)
            session.add(row)
            session.flush()
            chunks = [ChunkRow(document_id=row.id, position=p.position, heading=p.heading, text=p.text) for p in passages]
            session.add_all(chunks)
            session.flush()
            vectors = self._embedder.embed([_embedding_text(document.title, c) for c in chunks])
            self.index.remove(np.array(old_ids, dtype=np.int64))
            self.index.add(np.array([c.id for c in chunks], dtype=np.int64), vectors)
            self.index.save(self._index_dir)
        return len(chunks)

    @staticmethod
    def _drop_chunks(session: Session, document: DocumentRow) -> list[int]:
        ids = list(session.scalars(select(ChunkRow.id).where(ChunkRow.document_id == document.id)))
        session.execute(delete(ChunkRow).where(ChunkRow.document_id == document.id))
        return ids

    def search(self, query: str, *, k: int = 3, min_score: float = -1.0) -> list[Hit]:
        """The k passages nearest to the query, best first, above `min_score`."""
        if not query.strip() or len(self.index) == 0:
            return []
        found = [(i, s) for i, s in self.index.search(self._embedder.embed([query]), k)[0] if s >= min_score]
        if not found:
            return []
        with self._sessions() as session:
            rows = session.execute(
                select(ChunkRow, DocumentRow)
                .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
                .where(ChunkRow.id.in_([i for i, _ in found]))
            ).all()
        by_id = {chunk.id: (chunk, doc) for chunk, doc in rows}
        return [
            Hit(i, s, by_id[i][0].text, by_id[i][1].source, by_id[i][1].title, by_id[i][0].heading)
            for i, s in found
            if i in by_id
        ]

    def count(self) -> tuple[int, int]:
        """(documents, chunks) in the knowledge base."""
        from sqlalchemy import func

        with self._sessions() as session:
            documents = session.scalar(select(func.count()).select_from(DocumentRow)) or 0
            chunks = session.scalar(select(func.count()).select_from(ChunkRow)) or 0
        return documents, chunks


def _embedding_text(title: str, chunk: ChunkRow) -> str:
    """Prefix the heading path so a passage's topic is in its vector even when its text omits it."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading and chunk.heading not in chunk.text else chunk.text
