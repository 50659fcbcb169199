"""Short inputs through ONNX Runtime: on a CPU core a MiniLM query costs ~4 ms there against ~11 ms
in PyTorch, and every turn embeds one query.

sentence-transformers' own ONNX backend needs optimum, which does not work with transformers 5, so
the model's transformer is exported here with `torch.onnx.export` (once, cached by fingerprint) and
pooled and normalised the way sentence-transformers does it. A new export is checked against
PyTorch before it is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from assistant_core.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

    # the two modules exported, as used here (sentence-transformers moved their classes in v6)
    class _Pooling(Protocol):
        def get_config_dict(self) -> dict[str, Any]: ...

    class _Transformer(Protocol):
        auto_model: nn.Module


log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
"""Bump when the exported graph changes, so cached files from older code are not reused."""
PROBES = [
    "Where is my parcel?",
    "x",
    "How long does a refund take once the returned item has reached the warehouse? " * 8,
]
TOLERANCE = 1e-4
"""Largest difference from PyTorch's vectors an export may show (float32 noise is ~1e-7)."""
POOLINGS = ("mean", "cls")


class OnnxEncoder:
    """A sentence-transformers model's transformer in ONNX Runtime, pooled and normalised alike.

    >>> encoder = onnx_encoder(model, source, cache_dir)
    >>> encoder.embed(["where is my parcel?"]).shape
    (1, 384)
    """

    def __init__(self, session: Any, model: SentenceTransformer, pooling: str) -> None:
        self._session = session
        self._tokenize = _tokenizer_of(model)
        self._pooling = pooling
        self._inputs = {i.name for i in session.get_inputs()}

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        features = self._tokenize(list(texts))
        feed = {
            name: features[name].numpy().astype(np.int64)
            for name in ("input_ids", "attention_mask")
            if name in self._inputs
        }
        hidden = self._session.run(None, feed)[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def onnx_encoder(
    model: SentenceTransformer, source: Path, cache_dir: Path, name: str = ""
) -> OnnxEncoder:
    """The cached export of the model at `source`, made (and checked) on first use.

    Raises ModelError when the model cannot be served this way: a module sentence-transformers
    adds after pooling, a pooling other than mean or CLS, no onnxruntime, or an export that
    disagrees with PyTorch.
    """
    pooling = _pooling_of(model)
    try:
        import onnxruntime
    except ImportError as err:
        raise ModelError("onnxruntime is not installed") from err
    target = cache_dir / f"{name or source.name}-{_fingerprint(source)}.onnx"
    if target.is_file():
        try:
            return OnnxEncoder(_session(onnxruntime, target), model, pooling)
        except ModelError as err:
            log.warning("%s; exporting again", err)
            target.unlink(missing_ok=True)
    _export(model, target)
    encoder = OnnxEncoder(_session(onnxruntime, target), model, pooling)
    _check(encoder, model, target)
    return encoder


def _session(onnxruntime: Any, path: Path) -> Any:
    options = onnxruntime.SessionOptions()
    # one thread: turns run side by side, and a pool per query would spin against them
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load the ONNX export {path.name}: {err}") from err


def _pooling_of(model: SentenceTransformer) -> str:
    names = [type(module).__name__ for module in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ModelError(f"only Transformer + Pooling models are exported, not {names}")
    config = cast("_Pooling", model[1]).get_config_dict()  # checked just above
    pooling = str(config.get("pooling_mode", ""))
    if pooling not in POOLINGS:
        raise ModelError(f"pooling {pooling!r} is not exported (only {', '.join(POOLINGS)})")
    return pooling


def _tokenizer_of(model: SentenceTransformer) -> Any:
    """Texts to the model's input tensors, truncated as sentence-transformers does it (v6 renamed
    `tokenize` to `preprocess`)."""
    module = model[0]
    return getattr(module, "preprocess", None) or module.tokenize


def _fingerprint(source: Path) -> str:
    """Changes when any file of the model folder does (name, size, modification time)."""
    import torch

    digest = hashlib.sha256(f"{EXPORT_FORMAT}:{torch.__version__}".encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _export(model: SentenceTransformer, target: Path) -> None:
    """Export the transformer with dynamic batch and sequence axes, written beside `target` then
    renamed."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state

    features = _tokenizer_of(model)(PROBES)
    example = (features["input_ids"], features["attention_mask"])
    wrapper = LastHidden(cast("_Transformer", model[0]).auto_model).eval()
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=4096)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(
            prefix=f".{target.stem}-", suffix=".onnx", dir=target.parent
        )
        os.close(handle)
    except OSError as err:
        raise ModelError(f"cannot write the ONNX export into {target.parent}: {err}") from err
    log.info("exporting %s to ONNX (once)", target.name)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                example,
                staging,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        os.replace(staging, target)
    except Exception as err:  # the exporter raises many types
        raise ModelError(f"cannot export the embedding model to ONNX: {err}") from err
    finally:
        quiet.setLevel(level)
        Path(staging).unlink(missing_ok=True)


def _check(encoder: OnnxEncoder, model: SentenceTransformer, target: Path) -> None:
    """Compare a new export with PyTorch on the probes; a wrong one is deleted, never used."""
    expected = model.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True)
    difference = float(np.abs(encoder.embed(PROBES) - expected).max())
    if difference > TOLERANCE:
        target.unlink(missing_ok=True)
        raise ModelError(f"the ONNX export differs from PyTorch by {difference:.2g}")
