"""A knowledge-base stand-in for dialog tests (also used by the cross-process workers)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from knowledge.base import Hit, Retrieval
from knowledge.lexical import TermStats

_STOP = {
    "what",
    "which",
    "does",
    "that",
    "this",
    "with",
    "have",
    "from",
    "your",
    "about",
    "there",
    "when",
    "where",
    "how",
    "many",
    "much",
    "long",
    "take",
    "item",
    "items",
    "order",
    "tell",
    "please",
    "would",
    "like",
}


class KeywordKnowledge:
    """A `Retriever` (knowledge.protocols): the share of the question's content words a passage
    contains.

    The dialog tests check what the manager does with hits and misses, not retrieval quality, so
    they do not depend on the embedding, chunking or fusion of the real knowledge base.
    """

    def __init__(self, folder: Path) -> None:
        self.passages: list[Hit] = []
        for number, path in enumerate(sorted(folder.glob("*.md")), 1):
            text = path.read_text(encoding="utf-8")
            title = text.splitlines()[0].lstrip("# ").strip()
            self.passages.append(Hit(number, 0.0, text[:600], str(path), title, title))

    @staticmethod
    def _words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3 and w not in _STOP}

    def search(self, query: str, *, k: int = 3, min_score: float = -1.0) -> list[Hit]:
        asked = self._words(query)
        if not asked:
            return []
        scored = [(len(asked & self._words(p.text)) / len(asked), p) for p in self.passages]
        scored = [(s, p) for s, p in scored if s >= min_score and s > 0]
        scored.sort(key=lambda sp: (-sp[0], sp[1].chunk_id))
        return [replace(p, score=s) for s, p in scored[:k]]

    def retrieve(self, query: str, *, k: int = 3, min_score: float = -1.0) -> Retrieval:
        """The hits with no background sample: the relevance check then judges by words alone."""
        return Retrieval(self.search(query, k=k, min_score=min_score))

    def count(self) -> tuple[int, int]:
        """One passage per document."""
        return len(self.passages), len(self.passages)

    def term_stats(self) -> TermStats:
        counts: dict[str, int] = {}
        for passage in self.passages:
            for word in set(re.findall(r"[a-z0-9]+", passage.text.lower())):
                counts[word] = counts.get(word, 0) + 1
        return TermStats(len(self.passages), counts)
