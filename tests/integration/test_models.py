"""The packaged models themselves: conversion reused, JSON-schema output valid, embeddings
meaningful."""

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.llm.engine import TransformersChatModel
from assistant.models import chat_model_path, embedding_model_path
from assistant_core.settings import Settings
from knowledge.embeddings import SentenceTransformerEmbedder
from tests.conftest import MODEL_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_conversion_is_reused(chat_model_dir: Path) -> None:
    weights = chat_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    again = chat_model_path(Settings(model_dir=MODEL_CACHE))
    assert again == chat_model_dir and weights.stat().st_mtime_ns == before


def test_real_model_streams_and_obeys_a_json_schema(chat_model_dir: Path) -> None:
    model = TransformersChatModel(chat_model_dir, device="cpu")
    text = "".join(
        model.stream([{"role": "user", "content": "What is the capital of France?"}], max_tokens=20)
    )
    assert "Paris" in text
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        "required": ["name", "email"],
        "additionalProperties": False,
    }
    completion = model.complete(
        [
            {
                "role": "user",
                "content": (
                    "I am Ann Lee and my email is ann@example.org. Extract name and email as JSON."
                ),
            }
        ],
        max_tokens=60,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "contact", "schema": schema},
        },
    )
    data = json.loads(completion.text)
    assert set(data) == {"name", "email"}
    assert data["email"].startswith("ann@example.") and "Ann" in data["name"]


def test_real_embeddings_rank_paraphrases_close() -> None:
    embedder = SentenceTransformerEmbedder(embedding_model_path(Settings()), device="cpu")
    vectors = embedder.embed(
        ["Where is my parcel?", "Track my package delivery", "Reset my password"]
    )
    assert vectors.shape == (3, embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
