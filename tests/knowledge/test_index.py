from pathlib import Path

import numpy as np
import pytest

from knowledge.errors import IndexCorrupted, IndexMismatch
from knowledge.index import VectorIndex

pytestmark = pytest.mark.unit


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_finds_the_vector_itself_first() -> None:
    index = VectorIndex("m", 8)
    vectors = _vectors(20)
    index.add(np.arange(100, 120), vectors)
    hits = index.search(vectors[[3, 7]], k=2)
    assert [row[0][0] for row in hits] == [103, 107]
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-5)


def test_remove_really_removes() -> None:
    index = VectorIndex("m", 8)
    vectors = _vectors(5)
    index.add(np.arange(5), vectors)
    assert index.remove(np.array([2])) == 1
    assert len(index) == 4
    assert all(i != 2 for i, _ in index.search(vectors[[2]], k=5)[0])


def test_round_trip_through_disk(tmp_path: Path) -> None:
    index = VectorIndex("m", 8)
    index.add(np.arange(10), _vectors(10))
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, embedding_model="m", dimension=8)
    assert len(loaded) == 10
    assert loaded.search(_vectors(10)[[4]], k=1)[0][0][0] == 4


def test_missing_index_is_empty(tmp_path: Path) -> None:
    assert len(VectorIndex.load(tmp_path / "none", embedding_model="m", dimension=8)) == 0


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corruption_is_detected(tmp_path: Path, damage: str) -> None:
    index = VectorIndex("m", 8)
    index.add(np.arange(10), _vectors(10))
    index.save(tmp_path)
    meta = VectorIndex.read_meta(tmp_path)
    assert meta is not None
    target = tmp_path / meta.file
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupted, match="kb rebuild"):
        VectorIndex.load(tmp_path, embedding_model="m", dimension=8)


def test_other_embedding_model_is_a_clear_error(tmp_path: Path) -> None:
    index = VectorIndex("model-a", 8)
    index.add(np.arange(3), _vectors(3))
    index.save(tmp_path)
    with pytest.raises(IndexMismatch, match="model-a"):
        VectorIndex.load(tmp_path, embedding_model="model-b", dimension=8)


def test_wrong_dimension_is_refused() -> None:
    with pytest.raises(IndexMismatch):
        VectorIndex("m", 8).add(np.arange(2), _vectors(2, dim=4))
