"""The LangChain adapter passes langchain-tests' standard retriever tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from assistant_core.db import Database
from knowledge.base import KnowledgeBase
from knowledge.retriever import KnowledgeRetriever
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.unit

_FAQ = "\n".join(
    (
        f'{{"question": "How long does shipping to zone {n} take?", '
        f'"answer": "Shipping to zone {n} takes {n + 1} days."}}'
    )
    for n in range(8)
)


class _Shared:
    """One knowledge base for the whole class: langchain-tests builds retrievers from plain
    properties."""

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        import dialog.records  # noqa: F401
        import knowledge.records  # noqa: F401

        folder = Path(tempfile.mkdtemp(prefix="kb-retriever-"))
        atexit.register(shutil.rmtree, folder, True)
        (folder / "shipping.jsonl").write_text(_FAQ)
        database = Database(f"sqlite:///{folder / 'kb.db'}")
        kb = KnowledgeBase(database.session, HashingEmbedder(), folder / "index")
        kb.ingest([folder / "shipping.jsonl"])
        return kb


_SHARED = _Shared()


@pytest.mark.asyncio
class TestKnowledgeRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[KnowledgeRetriever]:
        return KnowledgeRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"knowledge": _SHARED.knowledge, "k": 2, "min_score": 0.1}

    @property
    def retriever_query_example(self) -> str:
        return "how long does shipping take"
