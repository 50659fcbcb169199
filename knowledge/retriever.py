"""The knowledge base as a LangChain retriever, for chains and agents built with LangChain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from knowledge.base import Hit, KnowledgeBase


def hit_document(hit: Hit) -> Document:
    """A Hit as a LangChain Document: the passage as content, its citation in the metadata."""
    return Document(
        page_content=hit.text,
        id=str(hit.chunk_id),
        metadata={
            "chunk_id": hit.chunk_id,
            "score": hit.score,
            "source": hit.source,
            "title": hit.title,
            "heading": hit.heading,
            "position": hit.position,
            "kb_version": hit.kb_version,
            "url": hit.url,
        },
    )


class KnowledgeRetriever(BaseRetriever):
    """Hybrid (BM25 + FAISS) retrieval with a relevance threshold; `k` and `min_score` per call too.

    >>> KnowledgeRetriever(knowledge=kb, k=3).invoke("how do I return shoes?")[0].metadata["source"]
    '/abs/docs/returns.md'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge: KnowledgeBase
    k: int = Field(default=4, ge=1)
    min_score: float = 0.2
    mode: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        min_score = float(kwargs.get("min_score", self.min_score))
        hits = self.knowledge.search(
            query, k=k, min_score=min_score, mode=kwargs.get("mode", self.mode)
        )
        return [hit_document(hit) for hit in hits]
