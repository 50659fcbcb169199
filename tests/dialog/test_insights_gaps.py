"""Knowledge gaps: each bad answer traced to its question, questions grouped by meaning (the real
embedder groups paraphrases), groups ranked by size with the closest documents."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from assistant.models import embedding_model_path
from assistant_core.db import Database
from assistant_core.settings import Settings
from dialog.insights import closest_documents, find_gaps, gaps_csv
from dialog.insights.gaps import bad_questions
from dialog.messages import Message
from tests.dialog.conftest import ShopFactory
from tests.dialog.insights_history import NEW_DAY, SHIPPING, build_history
from tests.fakes import FakeChatModel, HashingEmbedder

DECLINE = "I don't know that from our documents."
"""The model's reply when a passage matched a word but not the question: the turn abstains."""
LAPTOPS = ("Do you sell refurbished laptops?", "Can I buy a refurbished laptop from you?")
WRAPPING = (
    "Do you offer gift wrapping?",
    "Can my present be gift wrapped?",
    "Is gift wrap available for orders?",
)


@pytest.mark.unit
def test_each_signal_is_traced_to_its_question(database: Database, shop: ShopFactory) -> None:
    build_history(database, shop)
    found = {(q.conversation_id, q.text): q.reasons for q in bad_questions(database.engine)}
    assert found == {
        ("c2", SHIPPING): {"thumbs_down"},  # c1's answer got a thumbs up: not a gap
        ("c3", LAPTOPS[0]): {"abstained", "handoff"},  # then "yes" to the offer of a person
        ("c5", SHIPPING): {"handoff"},
        ("c7", LAPTOPS[1]): {"abstained"},
    }  # c4 asked for a person before any question; c6 ran a command
    later = bad_questions(database.engine, NEW_DAY)
    assert {q.conversation_id for q in later} == {"c3", "c5", "c7"}


@pytest.mark.unit
def test_groups_are_ranked_by_size_with_reasons_and_documents(
    database: Database, shop: ShopFactory
) -> None:
    model = FakeChatModel().enqueue(*[DECLINE] * 4)
    assistant = shop(database, model, route_with_model=False)
    for n, text in enumerate(["Do you offer gift wrapping?"] * 3 + [LAPTOPS[0]]):
        assistant.handle(Message(text, f"c{n}"))
    embedded: list[str] = []

    def embed(texts: Sequence[str]) -> NDArray[np.float32]:
        embedded.extend(texts)
        return HashingEmbedder().embed(texts)

    gaps = find_gaps(database.engine, embed, closest_documents(assistant.knowledge))
    assert sorted(embedded) == sorted(["Do you offer gift wrapping?", LAPTOPS[0]])  # once each
    assert [g.size for g in gaps] == [3, 1]
    assert gaps[0].examples == ["Do you offer gift wrapping?"]  # distinct examples only
    assert gaps[0].reasons == {"abstained": 3}
    assert all(d.keys() == {"title", "source", "score"} for g in gaps for d in g.documents)
    rows = gaps_csv(gaps).splitlines()
    assert rows[0].startswith("rank,size,abstained") and rows[1].startswith("1,3,3,0,0,")


@pytest.mark.integration
def test_the_real_embedder_groups_paraphrases(database: Database, shop: ShopFactory) -> None:
    from knowledge.embeddings import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(embedding_model_path(Settings()), device="cpu")
    model = FakeChatModel().enqueue(*[DECLINE] * 5)
    assistant = shop(database, model, route_with_model=False)
    for n, text in enumerate([*WRAPPING, *LAPTOPS]):
        reply = assistant.handle(Message(text, f"c{n}"))
        assert reply.abstained, text
    gaps = find_gaps(database.engine, embedder.embed, closest_documents(assistant.knowledge))
    assert [(g.size, sorted(g.examples)) for g in gaps] == [
        (3, sorted(WRAPPING)),
        (2, sorted(LAPTOPS)),
    ]
