from pathlib import Path

import numpy as np
import pytest

from knowledge.errors import IndexCorrupted, IndexMismatch
from knowledge.index import IndexSpec, VectorIndex, choose_backend, choose_spec, gpu_available

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


def test_single_queries_run_serially_and_leave_the_thread_setting_alone() -> None:
    import faiss

    index = VectorIndex("m", 8)
    vectors = _vectors(2000)
    index.add(np.arange(2000), vectors)
    previous = faiss.omp_get_max_threads()
    one = index.search(vectors[[5]], k=5)
    many = index.search(vectors[:40], k=5)
    assert faiss.omp_get_max_threads() == previous, "the caller's OpenMP setting is restored"
    assert [i for i, _ in one[0]] == [i for i, _ in many[5]], "one thread or several, same hits"
    assert [s for _, s in one[0]] == pytest.approx([s for _, s in many[5]], abs=1e-5)
    assert one[0][0][0] == 5


@pytest.mark.parametrize(
    ("spec", "count", "queries", "serial"),
    [
        (IndexSpec(), 10_000, 1, True),
        (IndexSpec(), 10_000, 64, False),
        (IndexSpec(), 200_000, 1, False),
        (IndexSpec("ivf", 512, 32), 100_000, 1, True),
        (IndexSpec("ivf", 2048, 128), 1_000_000, 1, False),
    ],
)
def test_only_small_scans_run_on_one_thread(
    spec: IndexSpec, count: int, queries: int, serial: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = VectorIndex("m", 8, spec=spec) if spec.kind == "flat" else VectorIndex("m", 8)
    index.spec = spec
    monkeypatch.setattr(VectorIndex, "__len__", lambda self: count)
    assert index.search_threads(queries) == (1 if serial else 0)


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


# ---- index structure and backend choice


@pytest.mark.parametrize(
    ("count", "kind", "nlist"),
    [
        (0, "flat", 0),
        (49_999, "flat", 0),
        (50_000, "ivf", 512),
        (100_000, "ivf", 512),
        (1_000_000, "ivf", 2048),
        (100_000_000, "ivf", 16_384),
    ],
)
def test_structure_is_chosen_by_size(count: int, kind: str, nlist: int) -> None:
    spec = choose_spec(count)
    assert (spec.kind, spec.nlist) == (kind, nlist)
    assert spec.kind == "flat" or spec.nprobe == max(16, nlist // 16)


@pytest.mark.parametrize(
    ("requested", "gpus", "gpu_faiss", "expected"),
    [
        ("auto", 0, False, "cpu"),
        ("auto", 1, False, "cpu"),  # a GPU but faiss-cpu installed
        ("auto", 0, True, "cpu"),  # faiss-gpu but no visible GPU
        ("auto", 2, True, "gpu"),
        ("cpu", 2, True, "cpu"),
        ("gpu", 1, True, "gpu"),
    ],
)
def test_backend_choice(requested: str, gpus: int, gpu_faiss: bool, expected: str) -> None:
    assert choose_backend(requested, gpus=gpus, gpu_faiss=gpu_faiss) == expected


def test_asking_for_a_gpu_without_one_is_a_clear_error() -> None:
    with pytest.raises(IndexMismatch, match="faiss-gpu"):
        choose_backend("gpu", gpus=0, gpu_faiss=False)


def test_this_machine_reports_what_faiss_sees() -> None:
    gpus, gpu_faiss = gpu_available()
    assert gpus >= 0 and (gpu_faiss or gpus == 0)


def test_ivf_keyed_by_id_deletes_round_trips_and_recalls(tmp_path: Path) -> None:
    vectors = _vectors(3000, dim=16, seed=1)
    ids = np.arange(10_000, 13_000)
    index = VectorIndex.build("m", ids, vectors, spec=IndexSpec("ivf", 32, 8))
    assert index.remove(np.array([10_000, 10_001])) == 2
    assert all(i not in (10_000, 10_001) for i, _ in index.search(vectors[[0]], k=10)[0])
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, embedding_model="m", dimension=16)
    assert (loaded.spec, len(loaded)) == (IndexSpec("ivf", 32, 8), 2998)
    hits = loaded.search(vectors[[5, 6, 7]], k=1)
    assert [row[0][0] for row in hits] == [10_005, 10_006, 10_007]
    assert set(loaded.reconstruct([10_005, 10_000])) == {10_005}
    kept_ids, kept = loaded.vectors()
    assert len(kept_ids) == 2998 and np.allclose(kept[kept_ids == 10_005][0], vectors[5])


def test_resize_moves_every_vector_into_the_new_structure() -> None:
    vectors = _vectors(400, dim=16, seed=2)
    flat = VectorIndex("m", 16)
    flat.add(np.arange(400) * 3, vectors)
    ivf = flat.resized(flat_limit=100)
    assert ivf.spec.kind == "ivf" and sorted(ivf.ids().tolist()) == list(range(0, 1200, 3))
    back = VectorIndex.build("m", np.arange(10), vectors[:10], spec=IndexSpec("ivf", 4, 4)).resized(
        flat_limit=100
    )
    assert back.spec.kind == "flat" and len(back) == 10


def test_lost_meta_file_is_corruption(tmp_path: Path) -> None:
    index = VectorIndex("m", 8)
    index.add(np.arange(3), _vectors(3))
    index.save(tmp_path)
    (tmp_path / "vectors.json").unlink()
    with pytest.raises(IndexCorrupted, match="kb rebuild"):
        VectorIndex.load(tmp_path, embedding_model="m", dimension=8)


@pytest.mark.gpu
@pytest.mark.skipif(gpu_available()[0] == 0, reason="needs a CUDA GPU and faiss-gpu")
def test_gpu_search_matches_cpu_search() -> None:
    vectors = _vectors(2000, dim=32, seed=3)
    cpu = VectorIndex.build("m", np.arange(2000), vectors, backend="cpu")
    gpu = VectorIndex.build("m", np.arange(2000), vectors, backend="gpu")
    assert [i for i, _ in gpu.search(vectors[[9]], k=5)[0]] == [
        i for i, _ in cpu.search(vectors[[9]], k=5)[0]
    ]
    assert gpu.backend == "gpu"
