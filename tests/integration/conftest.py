"""Integration fixtures: the real packaged models, loaded once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.models import chat_model_path
from assistant_core.settings import Settings
from tests.conftest import MODEL_CACHE


@pytest.fixture(scope="session")
def chat_model_dir() -> Path:
    """The packaged GGUF converted once into the shared model cache."""
    return chat_model_path(Settings(model_dir=MODEL_CACHE, data_dir=MODEL_CACHE.parent))


@pytest.fixture
def unseen_docs(tmp_path: Path) -> Path:
    """A folder of text files the assistant has never seen."""
    docs = tmp_path / "unseen"
    docs.mkdir()
    (docs / "espresso-machine-warranty.txt").write_text(
        "Espresso machine warranty\n\n"
        "Every Barista Pro espresso machine carries a warranty of three years. "
        "The warranty covers the pump and the boiler but not descaling damage.\n"
    )
    (docs / "bicycle-assembly.txt").write_text(
        "Bicycle assembly\n\n"
        "City bicycles arrive 90 percent assembled. Attach the pedals and the handlebar "
        "with the included 15 mm spanner; assembly takes about twenty minutes.\n"
    )
    (docs / "store-locations.txt").write_text(
        "Store locations\n\nOur showrooms are in Utrecht and Eindhoven, open Tuesday to Saturday.\n"
    )
    return docs
