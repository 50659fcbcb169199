"""Fixtures for the dialog tests: the demo shop assistant over a hashing-embedder knowledge base."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.db import Database
from assistant.demo import HELP_CENTRE
from assistant.demo.shop import DOMAIN_FILE, detach_returns, seed_orders, shop_tools
from dialog.domain import Domain
from dialog.manager import Assistant, TurnOptions
from dialog.store import ConversationStore
from knowledge.base import Hit
from tests.fakes import FakeChatModel


@pytest.fixture
def sqlite_db(data_dir: Path) -> Iterator[Database]:
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    db = Database(f"sqlite:///{data_dir / 'dialog.db'}")
    yield db
    db.close()


ShopFactory = Callable[..., Assistant]

_STOP = {"what", "which", "does", "that", "this", "with", "have", "from", "your", "about", "there", "when", "where",
         "how", "many", "much", "long", "take", "item", "items", "order", "tell", "please", "would", "like"}


class KeywordKnowledge:
    """A knowledge base stand-in: the share of the question's content words a passage contains.

    The dialog tests check what the manager does with hits and misses, not retrieval quality, so they
    do not depend on the embedding, chunking or fusion of the real knowledge base.
    """

    def __init__(self, folder: Path) -> None:
        self.passages = []
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


@pytest.fixture
def shop(data_dir: Path) -> ShopFactory:
    """Builds the demo shop assistant on a database (help centre ingested, orders seeded)."""

    def build(database: Database, model: FakeChatModel, **options: object) -> Assistant:
        seed_orders(database.session)
        kb = KeywordKnowledge(HELP_CENTRE)
        opts = TurnOptions(**{"min_score": 0.3, "top_k": 2, **options})  # type: ignore[arg-type]
        return Assistant(
            ConversationStore(database.session),
            kb,  # type: ignore[arg-type]
            model,
            opts,
            domain=Domain.load(DOMAIN_FILE),
            tools=shop_tools(),
            erasure_hooks=[detach_returns(database.session)],
        )

    return build
