"""LM server fixtures: one embedded server on the real packaged model for the whole run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.llm.server.embedded import EmbeddedChatModel
from assistant_core.settings import Settings
from tests.conftest import MODEL_CACHE
from tests.integration.conftest import chat_model_dir

__all__ = ["chat_model_dir"]


@pytest.fixture(scope="session")
def lm() -> Iterator[EmbeddedChatModel]:
    """The embedded server exactly as `assistant chat` starts it (build_chat_model, no base URL)."""
    from assistant.wiring import build_chat_model

    settings = Settings(
        model_dir=MODEL_CACHE,
        data_dir=MODEL_CACHE.parent,
        device="cpu",
        llm_max_batch=16,
        llm_max_queue=8,
    )
    model = build_chat_model(settings)
    assert isinstance(model, EmbeddedChatModel)
    yield model
    model.close()


@pytest.fixture
def base_url(lm: EmbeddedChatModel) -> str:
    return lm.base_url
