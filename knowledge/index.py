"""A FAISS inner-product index keyed by chunk id, saved atomically with a checksum and the model it was built for."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from knowledge.errors import IndexCorrupted, IndexMismatch

INDEX_FILE = "vectors.faiss"
META_FILE = "vectors.json"


@dataclass(frozen=True)
class IndexMeta:
    """What must match for the vectors on disk to mean anything."""

    embedding_model: str
    dimension: int
    count: int = 0
    sha256: str = ""


class VectorIndex:
    """Exact cosine search over normalised vectors, with real deletes.

    >>> index = VectorIndex("all-MiniLM-L6-v2", 384)
    >>> index.add(np.array([7]), vectors)
    >>> index.search(query, k=3)
    [[(7, 0.83)]]
    """

    def __init__(self, embedding_model: str, dimension: int, index: faiss.Index | None = None) -> None:
        self.embedding_model = embedding_model
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if vectors.shape[1:] != (self.dimension,):
            raise IndexMismatch(f"vectors of dimension {vectors.shape[1:]} for an index of {self.dimension}")
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(ids.astype(np.int64)))

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self)))
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def save(self, folder: Path) -> None:
        """Write the index and its metadata through temp files and renames, so a crash leaves the old one."""
        folder.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        meta = IndexMeta(self.embedding_model, self.dimension, len(self), hashlib.sha256(data).hexdigest())
        _atomic_write(folder / INDEX_FILE, data)
        _atomic_write(folder / META_FILE, json.dumps(asdict(meta), indent=2).encode())

    @classmethod
    def load(cls, folder: Path, *, embedding_model: str, dimension: int) -> VectorIndex:
        """Read an index, refusing one that is corrupted or was built with another model."""
        meta_path, index_path = folder / META_FILE, folder / INDEX_FILE
        if not meta_path.exists() and not index_path.exists():
            return cls(embedding_model, dimension)
        try:
            meta = IndexMeta(**json.loads(meta_path.read_text()))
            data = index_path.read_bytes()
        except (OSError, ValueError, TypeError) as err:
            raise IndexCorrupted(f"the index in {folder} cannot be read ({err}); run `assistant kb rebuild`") from err
        if hashlib.sha256(data).hexdigest() != meta.sha256:
            raise IndexCorrupted(f"the index in {folder} fails its checksum; run `assistant kb rebuild`")
        if (meta.embedding_model, meta.dimension) != (embedding_model, dimension):
            raise IndexMismatch(
                f"the index was built with {meta.embedding_model} ({meta.dimension}d) but the embedding "
                f"model is {embedding_model} ({dimension}d); run `assistant kb rebuild`"
            )
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(embedding_model, dimension, index)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
