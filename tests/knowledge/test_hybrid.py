"""With the real embedding model: hybrid retrieval beats vector-only on keyword queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.embeddings import SentenceTransformerEmbedder
from knowledge.retriever import KnowledgeRetriever

pytestmark = pytest.mark.integration

# Error codes look alike to an embedding model; BM25 matches the exact token.
CODES = {
    "E1041": "the water tank is not seated",
    "E1047": "the grinder is jammed by a foreign object",
    "E2210": "the boiler temperature sensor is faulty",
    "E2216": "the pump cannot build pressure",
    "E3302": "the drip tray is full",
    "E3308": "the milk frother is blocked with dried milk",
    "E4127": "the descaling cycle was interrupted",
    "E4129": "the brew unit is missing",
    "E5561": "the door of the coffee grounds container is open",
    "E5563": "the firmware update failed",
}


@pytest.fixture(scope="module")
def real_embedder() -> SentenceTransformerEmbedder:
    from assistant.models import embedding_model_path
    from assistant_core.settings import Settings

    return SentenceTransformerEmbedder(embedding_model_path(Settings()), device="cpu")


@pytest.fixture
def kb(data_dir: Path, tmp_path: Path, real_embedder: SentenceTransformerEmbedder) -> KnowledgeBase:
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    faq = tmp_path / "error-codes.jsonl"
    faq.write_text(
        "\n".join(
            json.dumps(
                {
                    "question": f"What does error {code} on the Barista Pro mean?",
                    "answer": (
                        f"Error {code} means {cause}. "
                        "Switch the machine off and on again after fixing it."
                    ),
                }
            )
            for code, cause in CODES.items()
        )
    )
    database = Database(f"sqlite:///{data_dir / 'kb.db'}")
    base = KnowledgeBase(database.session, real_embedder, data_dir / "index")
    base.ingest([faq])
    return base


def _top1(kb: KnowledgeBase, mode: str) -> int:
    return sum(
        bool(
            (hits := kb.search(f"my machine shows {code}", k=1, min_score=0.2, mode=mode))
            and code in hits[0].text
        )
        for code in CODES
    )


def test_hybrid_beats_vector_only_on_keyword_queries(kb: KnowledgeBase) -> None:
    hybrid, vector = _top1(kb, "hybrid"), _top1(kb, "vector")
    print(f"top-1 on {len(CODES)} error-code queries: hybrid {hybrid}, vector-only {vector}")
    assert hybrid > vector
    assert hybrid >= 0.8 * len(CODES)


def test_nothing_relevant_gives_nothing(kb: KnowledgeBase) -> None:
    assert kb.search("recipe for a chocolate cake with cherries", k=3, min_score=0.2) == []
    retriever = KnowledgeRetriever(knowledge=kb, k=3, min_score=0.2)
    assert retriever.invoke("recipe for a chocolate cake with cherries") == []
    found = retriever.invoke("what does E2216 mean")
    assert found and "E2216" in found[0].page_content and found[0].metadata["kb_version"] >= 1


def test_every_format_answers_a_natural_question_with_the_real_model(
    data_dir: Path, tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401
    from tests.knowledge import files

    database = Database(f"sqlite:///{data_dir / 'formats.db'}")
    kb = KnowledgeBase(database.session, real_embedder, data_dir / "formats-index")
    assert kb.ingest([files.write_all(tmp_path / "docs")]).failed == []
    questions = {
        "Does the espresso machine warranty cover the boiler?": "warranty.html",
        "When do my loyalty points expire?": "loyalty.pdf",
        "Which spanner do I need to attach the pedals?": "bicycle.docx",
        "Can you deliver to Norway?": "faq.csv",
        "Do students get a discount?": "more-faq.jsonl",
        "How much is gift wrapping?": "gift-wrapping.txt",
        "How long until my refund arrives?": "returns.md",
    }
    for question, name in questions.items():
        hits = kb.search(question, k=1, min_score=0.2)
        assert hits and Path(hits[0].source).name == name, (question, hits)
    database.close()
