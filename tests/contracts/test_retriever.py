"""The Retriever contract (knowledge/protocols.py), run against every retriever over the demo help
centre: the keyword stand-in of the dialog tests, the FAISS knowledge base with the hashing test
embedder, and (integration) with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.demo import HELP_CENTRE
from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.embeddings import Embedder
from knowledge.protocols import Retriever
from tests.dialog.keyword_kb import KeywordKnowledge
from tests.fakes import HashingEmbedder

UNIT = [pytest.mark.unit]
MODEL = [pytest.mark.integration, pytest.mark.slow]

DOCUMENTS = sorted(p.name for p in HELP_CENTRE.glob("*.md"))
QUESTION = "How do I reset my password?"
ANSWERED_BY = "password-reset.md"


def _packaged_embedder() -> Embedder:
    from assistant.models import embedding_model_path
    from assistant_core.settings import Settings
    from knowledge.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(embedding_model_path(Settings()), device="cpu")


def _knowledge_base(embedder: Callable[[], Embedder]) -> Callable[[Path], Iterator[Retriever]]:
    def build(data_dir: Path) -> Iterator[Retriever]:
        import dialog.records  # noqa: F401
        import knowledge.records  # noqa: F401

        database = Database(f"sqlite:///{data_dir / 'kb.db'}")
        base = KnowledgeBase(database.session, embedder(), data_dir / "index")
        base.ingest([HELP_CENTRE])
        yield base
        database.close()

    return build


def _keywords(data_dir: Path) -> Iterator[Retriever]:
    yield KeywordKnowledge(HELP_CENTRE)


@pytest.fixture(
    params=[
        pytest.param(_keywords, id="keyword-fake", marks=UNIT),
        pytest.param(_knowledge_base(HashingEmbedder), id="faiss-hashing", marks=UNIT),
        pytest.param(
            _knowledge_base(_packaged_embedder),
            id="faiss-minilm",
            marks=MODEL,
        ),
    ],
    scope="module",
)
def retriever(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retriever]:
    """Each retriever, over the 15 articles of the demo help centre (built once: the tests only
    read)."""
    yield from request.param(tmp_path_factory.mktemp("retriever"))


def test_it_is_a_retriever(retriever: Retriever) -> None:
    assert isinstance(retriever, Retriever)


def test_the_article_that_answers_comes_first(retriever: Retriever) -> None:
    hits = retriever.search(QUESTION, k=3)
    assert hits and Path(hits[0].source).name == ANSWERED_BY


def test_search_gives_the_hits_of_retrieve(retriever: Retriever) -> None:
    retrieval = retriever.retrieve(QUESTION, k=3, min_score=0.1)
    found = [(h.chunk_id, h.source) for h in retriever.search(QUESTION, k=3, min_score=0.1)]
    assert found == [(h.chunk_id, h.source) for h in retrieval.hits]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_at_most_k_distinct_passages_from_the_corpus(retriever: Retriever, k: int) -> None:
    hits = retriever.search("shipping costs and delivery times", k=k)
    assert 1 <= len(hits) <= k
    assert len({h.chunk_id for h in hits}) == len(hits)
    assert all(Path(h.source).name in DOCUMENTS and h.text.strip() for h in hits)


def test_min_score_is_a_floor(retriever: Retriever) -> None:
    every = retriever.search(QUESTION, k=5)
    floor = every[0].score
    assert all(h.score >= floor for h in retriever.search(QUESTION, k=5, min_score=floor))
    assert retriever.search(QUESTION, k=5, min_score=1.01) == []
    assert retriever.retrieve(QUESTION, k=5, min_score=1.01).hits == []


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_question_finds_nothing(retriever: Retriever, query: str) -> None:
    assert retriever.retrieve(query, k=3).hits == []


def test_k_zero_finds_nothing(retriever: Retriever) -> None:
    assert retriever.search(QUESTION, k=0) == []


def test_count_and_term_stats_describe_the_same_corpus(retriever: Retriever) -> None:
    documents, passages = retriever.count()
    assert documents == len(DOCUMENTS) and passages >= documents
    stats = retriever.term_stats()
    assert stats.documents == passages
    assert 1 <= stats.frequency("password") < passages
    assert stats.frequency("zeppelin") == 0
