"""SQL rows of the knowledge base: documents, their chunks with their vectors (a chunk's id is its
FAISS id), its version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant_core.db import Base

_BigId = BigInteger().with_variant(Integer(), "sqlite")


class DocumentRow(Base):
    """An ingested file, identified by its source path; the hash tells whether it changed."""

    __tablename__ = "documents"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1024), unique=True)
    title: Mapped[str] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16), default="", server_default="")
    kb_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    url: Mapped[str] = mapped_column(String(2048), default="", server_default="")
    """Where a reader can open the document: a web page's URL, a file's front-matter `url:`."""


class ChunkRow(Base):
    """A passage of a document, as embedded and retrieved; ids come from AUTOINCREMENT, never
    reused."""

    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(String(1024))
    text: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    """The passage's embedding (float32 bytes): every host's index is filled from it, never
    re-embedded. None for chunks stored before vectors were (embedded once, then stored)."""


class KnowledgeStateRow(Base):
    """One row: the knowledge base's version, bumped in the same transaction as every change."""

    __tablename__ = "knowledge_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    embedding_model: Mapped[str] = mapped_column(String(256), default="", server_default="")
    """The model that made the stored vectors: a process embedding with another cannot use them."""
