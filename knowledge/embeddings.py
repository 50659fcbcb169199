"""Text embeddings behind a Protocol; sentence-transformers by default."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from assistant_core.errors import ModelError

if TYPE_CHECKING:
    from knowledge.onnx_encoder import OnnxEncoder

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "assistant"
"""Where the ONNX export goes when no folder is given (the assistant passes its models folder)."""
SHORT_BATCH = 8
"""Up to this many texts (a turn's query) go through ONNX Runtime when it is on; ingest batches stay
in PyTorch, which uses every core on them."""


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row per text, normalised so inner product is cosine similarity."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, batched and normalised; with
    backend "onnx" or "auto", short inputs go through ONNX Runtime (a third of the time on a CPU).

    >>> SentenceTransformerEmbedder(path).embed(["where is my parcel?"]).shape
    (1, 384)
    """

    def __init__(
        self,
        path: Path,
        *,
        device: str = "auto",
        batch_size: int = 64,
        backend: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
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
        self._short: OnnxEncoder | None = None
        if backend != "torch":
            self._short = self._onnx(path, backend, cache_dir or DEFAULT_CACHE)

    @property
    def backend(self) -> str:
        """What embeds short inputs: "onnx" or "torch"."""
        return "torch" if self._short is None else "onnx"

    def _onnx(self, path: Path, backend: str, cache_dir: Path) -> OnnxEncoder | None:
        """ONNX Runtime for short inputs on a CPU; with "auto", PyTorch when it cannot be."""
        from knowledge.onnx_encoder import onnx_encoder

        if self._model.device.type != "cpu":
            if backend == "onnx":
                raise ModelError("the onnx embedding backend runs on the CPU only")
            return None
        try:
            return onnx_encoder(self._model, path, cache_dir, self.name)
        except ModelError as err:
            if backend == "onnx":
                raise
            log.warning("queries are embedded with PyTorch: %s", err)
            return None

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._short is not None and len(texts) <= SHORT_BATCH:
            return self._short.embed(texts)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
