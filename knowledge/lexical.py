"""BM25 keyword search over chunk texts (bm25s), rebuilt from SQL when the knowledge base
changes."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
from numpy.typing import NDArray


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)  # type: ignore[return-value]


class LexicalIndex:
    """Keyword scores for exact terms (product codes, error numbers) that embeddings blur.

    >>> LexicalIndex(np.array([7]), ["error E4127: pump blocked"], version=3).search("E4127", 5)
    [(7, 0.1150728315114975)]
    """

    def __init__(self, ids: NDArray[np.int64], texts: Sequence[str], *, version: int) -> None:
        self.version = version
        self._ids = np.asarray(ids, dtype=np.int64)
        self._bm25 = bm25s.BM25()
        if len(texts):
            corpus = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every indexed word (lower case, stopwords left out)."""
        return frozenset(w for w in self._bm25.vocab_dict if w) if len(self._ids) else frozenset()

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to k (chunk id, BM25 score) with a positive score, best first."""
        if not len(self._ids) or k <= 0:
            return []
        tokens = _tokens([query])
        if not tokens[0]:
            return []
        # bm25s scores every chunk in one sparse pass; numpy picks the top k. Its `retrieve` does
        # the same with per-call bookkeeping that cost ~6x more at 100k chunks.
        scores = self._bm25.get_scores(tokens[0])
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]  # best first; ties in corpus order
        return [(int(self._ids[r]), float(scores[r])) for r in top if scores[r] > 0]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: int = 60
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank from 1; best first.

    >>> reciprocal_rank_fusion([[1, 2], [2, 3]])[0][0]
    2
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
