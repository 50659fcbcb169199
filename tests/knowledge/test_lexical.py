"""BM25 keyword search: the same best passages and scores as bm25s's own `retrieve`."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest

from knowledge.lexical import LexicalIndex, _tokens

pytestmark = pytest.mark.unit

WORDS = "refund parcel invoice E4127 courier voucher warranty blender kettle pump".split()


def _corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.mark.parametrize("k", [1, 5, 40, 500])
def test_top_k_matches_bm25s_retrieve(k: int) -> None:
    texts = _corpus(300, seed=k)
    ids = np.arange(1000, 1300)
    index = LexicalIndex(ids, texts, version=1)
    reference = bm25s.BM25()
    reference.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    for query in ["refund for the blender", "E4127 pump", "voucher", "kettle courier invoice"]:
        hits = index.search(query, k)
        rows, scores = reference.retrieve(
            _tokens([query]), k=min(k, len(texts)), show_progress=False
        )
        expected = sorted((float(s) for s in scores[0] if s > 0), reverse=True)
        assert [score for _, score in hits] == pytest.approx(expected)
        assert all(1000 <= chunk_id < 1300 for chunk_id, _ in hits)
        for chunk_id, score in hits:  # each id carries its own passage's score
            assert score == pytest.approx(
                reference.get_scores(_tokens([query])[0])[chunk_id - 1000]
            )


def test_ties_come_in_corpus_order_and_unknown_words_find_nothing() -> None:
    index = LexicalIndex(np.array([30, 10, 20]), ["pump", "pump", "pump"], version=1)
    assert [chunk_id for chunk_id, _ in index.search("pump", 3)] == [30, 10, 20]
    assert index.search("zeppelin", 3) == []
