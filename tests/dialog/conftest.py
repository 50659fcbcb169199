"""Fixtures for the dialog tests: the demo shop assistant over a keyword stand-in for the knowledge
base."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.demo import HELP_CENTRE
from assistant.demo.shop import DOMAIN_FILE, detach_returns, seed_orders, shop_tools
from assistant_core.db import Database
from dialog.domain import Domain
from dialog.manager import Assistant, TurnOptions
from dialog.store import SqlConversationStore
from tests.dialog.keyword_kb import KeywordKnowledge
from tests.fakes import FakeChatModel


@pytest.fixture
def sqlite_db(data_dir: Path) -> Iterator[Database]:
    import dialog.records  # noqa: F401
    import knowledge.records  # noqa: F401

    db = Database(f"sqlite:///{data_dir / 'dialog.db'}")
    yield db
    db.close()


ShopFactory = Callable[..., Assistant]


@pytest.fixture
def shop(data_dir: Path) -> ShopFactory:
    """Builds the demo shop assistant on a database (help centre ingested, orders seeded)."""

    def build(database: Database, model: FakeChatModel, **options: object) -> Assistant:
        seed_orders(database.session)
        kb = KeywordKnowledge(HELP_CENTRE)
        opts = TurnOptions(**{"min_score": 0.3, "top_k": 2, **options})  # type: ignore[arg-type]
        return Assistant(
            SqlConversationStore(database.session),
            kb,
            model,
            opts,
            domain=Domain.load(DOMAIN_FILE),
            tools=shop_tools(),
            erasure_hooks=[detach_returns(database.session)],
        )

    return build
