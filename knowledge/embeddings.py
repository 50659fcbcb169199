"""Text embeddings behind a Protocol; sentence-transformers by default."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from assistant.errors import ModelError


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row per text, normalised so inner product is cosine similarity."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, batched and normalised.

    >>> SentenceTransformerEmbedder(path).embed(["where is my parcel?"]).shape
    (1, 384)
    """

    def __init__(self, path: Path, *, device: str = "auto", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(
                str(path), device=None if device == "auto" else device, local_files_only=True
            )
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot load embedding model from {path}: {err}") from err
        self.name = path.name if path.name != "model" else path.parent.name
        dimension = (
            self._model.get_embedding_dimension()
            if hasattr(self._model, "get_embedding_dimension")
            else self._model.get_sentence_embedding_dimension()
        )
        self.dimension = int(dimension or 0)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
