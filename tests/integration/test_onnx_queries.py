"""Queries through ONNX Runtime: PyTorch's vectors, exported once, never a wrong export."""

from pathlib import Path

import numpy as np
import pytest

from assistant.models import embedding_model_path
from assistant_core.errors import ModelError
from assistant_core.settings import Settings
from knowledge.embeddings import SHORT_BATCH, SentenceTransformerEmbedder
from knowledge.onnx_encoder import OnnxEncoder, _check, _pooling_of, _session
from tests.conftest import MODEL_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = [
    "How much does standard shipping cost?",
    "ok",
    "Wo ist mein Paket? Ich warte seit zwei Wochen!",
    "refund " * 400,  # past the model's 256 tokens: truncated the same way
    "🙂 emoji and ünïcödé",
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return embedding_model_path(Settings())


@pytest.fixture(scope="module")
def torch_embedder(model_path: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model_path, device="cpu", backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder(model_path: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        model_path, device="cpu", backend="onnx", cache_dir=MODEL_CACHE
    )


def test_onnx_queries_match_pytorch(
    onnx_embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert onnx_embedder.backend == "onnx" and torch_embedder.backend == "torch"
    for text in TEXTS:  # one at a time, as turns embed them
        single = onnx_embedder.embed([text])
        assert np.abs(single - torch_embedder.embed([text])).max() < 1e-5
        assert abs(float(np.linalg.norm(single)) - 1.0) < 1e-5
    padded = onnx_embedder.embed(TEXTS)  # a padded batch, still within SHORT_BATCH
    assert len(TEXTS) <= SHORT_BATCH
    assert np.abs(padded - torch_embedder.embed(TEXTS)).max() < 1e-5


def test_the_export_is_made_once_and_reused(
    onnx_embedder: SentenceTransformerEmbedder, model_path: Path
) -> None:
    exports = sorted(MODEL_CACHE.glob(f"{onnx_embedder.name}-*.onnx"))
    assert exports, "the export is cached beside the converted chat model"
    stamps = [path.stat().st_mtime_ns for path in exports]
    again = SentenceTransformerEmbedder(model_path, backend="auto", cache_dir=MODEL_CACHE)
    assert again.backend == "onnx"
    assert [path.stat().st_mtime_ns for path in exports] == stamps


def test_a_damaged_export_is_made_again(model_path: Path, tmp_path: Path) -> None:
    first = SentenceTransformerEmbedder(model_path, backend="onnx", cache_dir=tmp_path)
    (export,) = tmp_path.glob("*.onnx")
    export.write_bytes(b"not an onnx file")
    second = SentenceTransformerEmbedder(model_path, backend="onnx", cache_dir=tmp_path)
    assert second.backend == "onnx" and export.stat().st_size > 1_000_000
    assert np.allclose(second.embed(TEXTS[:1]), first.embed(TEXTS[:1]), atol=1e-6)


def test_an_export_that_disagrees_with_pytorch_is_deleted_not_used(
    onnx_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    import onnxruntime

    (cached,) = MODEL_CACHE.glob(f"{onnx_embedder.name}-*.onnx")
    copy = tmp_path / cached.name
    copy.write_bytes(cached.read_bytes())
    model = onnx_embedder._model
    wrong = OnnxEncoder(_session(onnxruntime, copy), model, "cls")  # the model pools by mean
    with pytest.raises(ModelError, match="differs from PyTorch"):
        _check(wrong, model, copy)
    assert not copy.exists()


def test_models_it_cannot_export_fall_back_to_pytorch(
    onnx_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    model = onnx_embedder._model
    extended = SentenceTransformer(modules=[model[0], model[1], Dense(384, 8)], device="cpu")
    with pytest.raises(ModelError, match="only Transformer \\+ Pooling"):
        _pooling_of(extended)
    extended.save(str(tmp_path / "extended"))
    fallback = SentenceTransformerEmbedder(
        tmp_path / "extended", backend="auto", cache_dir=tmp_path
    )
    assert fallback.backend == "torch" and fallback.embed(["hi"]).shape == (1, 8)
    assert not list(tmp_path.glob("*.onnx"))
    with pytest.raises(ModelError, match="only Transformer"):
        SentenceTransformerEmbedder(tmp_path / "extended", backend="onnx", cache_dir=tmp_path)


def test_an_unwritable_cache_falls_back_to_pytorch(model_path: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    fallback = SentenceTransformerEmbedder(model_path, backend="auto", cache_dir=blocked / "x")
    assert fallback.backend == "torch" and fallback.embed(["hi"]).shape == (1, 384)
    with pytest.raises(ModelError, match="cannot write the ONNX export"):
        SentenceTransformerEmbedder(model_path, backend="onnx", cache_dir=blocked / "x")
