"""What the layers above need from a knowledge base, so that any backend can stand behind it.

The FAISS `KnowledgeBase` is one implementation; a distributed vector database, or the keyword
stand-in of the dialog tests, is another. tests/contracts/test_retriever.py runs the same suite
against each.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from knowledge.base import Hit, Retrieval
from knowledge.lexical import TermStats


@runtime_checkable
class Retriever(Protocol):
    """Passages for a question, and the corpus's word statistics for the relevance check.

    >>> retrieval = retriever.retrieve("How long does shipping take?", k=3, min_score=0.2)
    >>> [hit.source for hit in retrieval.hits]
    ['shipping.md']
    """

    def search(self, query: str, *, k: int = 3, min_score: float = -1.0) -> list[Hit]:
        """The k best passages with a score of at least `min_score`, best first."""
        ...

    def retrieve(self, query: str, *, k: int = 3, min_score: float = -1.0) -> Retrieval:
        """`search`'s hits plus how the query scores against the corpus at large."""
        ...

    def term_stats(self) -> TermStats:
        """In how many passages each word occurs."""
        ...

    def count(self) -> tuple[int, int]:
        """(documents, passages) held."""
        ...
