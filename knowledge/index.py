"""A FAISS inner-product index keyed by chunk id: exact while small, IVF when large, CPU or GPU.

The file on disk is named after its checksum and a small JSON meta file points at it; both are
written through temp files and renames, so a crash at any moment leaves a consistent pair. The
processes of one host that share the data dir (`serve --workers N`) take a file lock to write the
pair, and a shared one to read it. The file is a cache that makes a start fast: the vectors
themselves are stored with their chunks in SQL (see knowledge.base).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from knowledge.errors import IndexCorrupted, IndexMismatch, IndexWriteFailed

log = logging.getLogger(__name__)

META_FILE = "vectors.json"
SERIAL_QUERIES, SERIAL_SCAN = 8, 50_000
"""Up to 8 queries that scan up to 50k vectors are searched on one OpenMP thread: for a chat
turn's single query the thread pool's start-up and spinning cost more than the scan (and steal the
CPU from the embedding model's threads); a server gets its parallelism from concurrent turns."""
FLAT_LIMIT = 50_000
"""Below this many vectors, exact search is fast enough and needs no training."""

Kind = Literal["flat", "ivf"]
Backend = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS structure holds the vectors, with its size-dependent parameters."""

    kind: Kind = "flat"
    nlist: int = 0
    nprobe: int = 0

    def describe(self) -> str:
        return (
            "Flat (exact)" if self.kind == "flat" else f"IVF{self.nlist},Flat nprobe={self.nprobe}"
        )


def choose_spec(count: int, *, flat_limit: int = FLAT_LIMIT) -> IndexSpec:
    """Exact below `flat_limit`; above it IVF with ~2*sqrt(n) lists (a power of two) and 1/16 of
    them probed.

    >>> choose_spec(1_000_000)
    IndexSpec(kind='ivf', nlist=2048, nprobe=128)
    """
    if count < flat_limit:
        return IndexSpec()
    nlist = 2 ** round(math.log2(2 * math.sqrt(count)))
    nlist = min(max(nlist, 64), 65_536)
    return IndexSpec("ivf", nlist, max(16, nlist // 16))


def choose_backend(requested: str, *, gpus: int, gpu_faiss: bool) -> Backend:
    """`gpu` when asked for or `auto` with a visible GPU and faiss-gpu; `cpu` otherwise.

    >>> choose_backend("auto", gpus=1, gpu_faiss=True)
    'gpu'
    """
    if requested == "cpu":
        return "cpu"
    usable = gpus > 0 and gpu_faiss
    if requested == "gpu" and not usable:
        raise IndexMismatch("ASSISTANT_INDEX_BACKEND=gpu but no GPU with faiss-gpu is available")
    return "gpu" if usable else "cpu"


def gpu_available() -> tuple[int, bool]:
    """(number of GPUs FAISS sees, whether this FAISS build has GPU support)."""
    has = hasattr(faiss, "StandardGpuResources")
    return (faiss.get_num_gpus() if has else 0), has


@dataclass(frozen=True)
class IndexMeta:
    """What must match for the vectors on disk to mean anything, and what they reflect."""

    embedding_model: str
    dimension: int
    count: int = 0
    sha256: str = ""
    file: str = ""
    kb_version: int = 0
    kind: Kind = "flat"
    nlist: int = 0
    nprobe: int = 0


def _new_faiss(spec: IndexSpec, dimension: int) -> faiss.Index:
    if spec.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, spec.nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    index.nprobe = spec.nprobe
    # reconstruct by chunk id, and still delete
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


class VectorIndex:
    """Cosine search over normalised vectors keyed by chunk id, with real deletes.

    IVF is used without an IndexIDMap wrapper because IVF stores ids itself and an IDMap over IVF
    cannot delete; HNSW is not offered for the same reason (FAISS's HNSW cannot delete).

    >>> index = VectorIndex("all-MiniLM-L6-v2", 384)
    >>> index.add(np.array([7]), vectors)
    >>> index.search(query, k=3)
    [[(7, 0.83)]]
    """

    def __init__(
        self,
        embedding_model: str,
        dimension: int,
        index: faiss.Index | None = None,
        *,
        spec: IndexSpec | None = None,
        backend: Backend = "cpu",
        kb_version: int = 0,
    ) -> None:
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.spec = spec or IndexSpec()
        self.backend = backend
        self.kb_version = kb_version
        self._index = index if index is not None else _new_faiss(self.spec, dimension)
        self._gpu_index: faiss.Index | None = None

    @classmethod
    def build(
        cls,
        embedding_model: str,
        ids: NDArray[np.int64],
        vectors: NDArray[np.float32],
        *,
        spec: IndexSpec | None = None,
        backend: Backend = "cpu",
        kb_version: int = 0,
    ) -> VectorIndex:
        """A fresh index of the structure chosen for this many vectors (trained when IVF)."""
        spec = spec or choose_spec(len(ids))
        index = cls(
            embedding_model, vectors.shape[1], spec=spec, backend=backend, kb_version=kb_version
        )
        if spec.kind == "ivf":
            index._train(vectors)
        index.add(ids, vectors)
        return index

    def _train(self, vectors: NDArray[np.float32]) -> None:
        sample_size = min(len(vectors), 40 * self.spec.nlist)
        rng = np.random.default_rng(0)
        sample = (
            vectors[rng.choice(len(vectors), sample_size, replace=False)]
            if sample_size < len(vectors)
            else vectors
        )
        self._index.train(np.ascontiguousarray(sample, dtype=np.float32))

    @property
    def faiss_index(self) -> faiss.Index:
        """The CPU FAISS object (for benchmarks comparing against raw `search`)."""
        return self._index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise IndexMismatch(
                f"vectors of dimension {vectors.shape[1:]} for an index of {self.dimension}"
            )
        if len(ids) == 0:
            return
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )
        self._gpu_index = None

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        self._gpu_index = None
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def ids(self) -> NDArray[np.int64]:
        """Every chunk id held, in no particular order."""
        if self.spec.kind == "flat":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
            for n in range(self._index.nlist)
            if lists.list_size(n)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def vectors(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(ids, vectors) of everything held, to move the data into another structure."""
        if self.spec.kind == "flat":
            inner = faiss.downcast_index(self._index.index)
            return self.ids(), inner.reconstruct_n(0, len(self)).astype(np.float32)
        lists, ids, rows = self._index.invlists, [], []
        for n in range(self._index.nlist):
            size = lists.list_size(n)
            if size:
                ids.append(faiss.rev_swig_ptr(lists.get_ids(n), size).copy())
                codes = faiss.rev_swig_ptr(lists.get_codes(n), size * lists.code_size).copy()
                rows.append(codes.view(np.float32).reshape(size, self.dimension))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(ids).astype(np.int64), np.concatenate(rows)

    def reconstruct(self, ids: list[int]) -> dict[int, NDArray[np.float32]]:
        """The stored vectors of those ids that are present."""
        found: dict[int, NDArray[np.float32]] = {}
        for i in ids:
            try:
                found[int(i)] = self._index.reconstruct(int(i))
            except RuntimeError:
                continue
        return found

    def resized(self, *, flat_limit: int = FLAT_LIMIT) -> VectorIndex:
        """This index, or a new one of the structure that now suits its size (e.g. Flat -> IVF)."""
        wanted = choose_spec(len(self), flat_limit=flat_limit)
        grown = (
            self.spec.kind == "ivf" and wanted.kind == "ivf" and wanted.nlist >= 4 * self.spec.nlist
        )
        shrunk = self.spec.kind == "ivf" and len(self) < flat_limit // 2
        if not ((self.spec.kind == "flat" and wanted.kind == "ivf") or grown or shrunk):
            return self
        ids, vectors = self.vectors()
        log.info("re-indexing %d vectors as %s", len(ids), wanted.describe())
        return VectorIndex.build(
            self.embedding_model,
            ids,
            vectors,
            spec=wanted,
            backend=self.backend,
            kb_version=self.kb_version,
        )

    def set_nprobe(self, nprobe: int) -> None:
        if self.spec.kind == "ivf":
            self._index.nprobe = nprobe
            self.spec = replace(self.spec, nprobe=nprobe)
            self._gpu_index = None

    def _searcher(self) -> faiss.Index:
        if self.backend == "cpu":
            return self._index
        if self._gpu_index is None:
            try:
                self._gpu_index = faiss.index_cpu_to_gpu(_gpu_resources(), 0, self._index)
            except (RuntimeError, AttributeError) as err:  # pragma: no cover - needs a GPU
                log.warning("FAISS GPU copy failed (%s); searching on the CPU", err)
                self.backend = "cpu"
                return self._index
        return self._gpu_index

    def search_threads(self, queries: int) -> int:
        """FAISS threads for a search of this many queries: 1 when the scan is small (see
        SERIAL_SCAN), else 0 (OpenMP's default)."""
        scanned = len(self)
        if self.spec.kind == "ivf" and self.spec.nlist:
            scanned = math.ceil(scanned * self.spec.nprobe / self.spec.nlist)
        small = queries <= SERIAL_QUERIES and scanned <= SERIAL_SCAN
        return 1 if self.backend == "cpu" and small else 0

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        if len(self) == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        with omp_threads(self.search_threads(len(queries))):
            scores, ids = self._searcher().search(
                np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self))
            )
        return [
            [(i, s) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids.tolist(), scores.tolist(), strict=True)
        ]

    def save(self, folder: Path) -> None:
        """Write `vectors-<sha>.faiss`, then the meta file naming it, then drop the old file."""
        folder.mkdir(parents=True, exist_ok=True)
        with folder_lock(folder, exclusive=True):
            self._save(folder)

    def _save(self, folder: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".vectors.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            with open(tmp, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                os.fsync(handle.fileno())
            name = f"vectors-{digest[:16]}.faiss"
            os.replace(tmp, folder / name)
        except (OSError, RuntimeError) as err:  # faiss reports a full disk as RuntimeError
            Path(tmp).unlink(missing_ok=True)
            reason = (
                "no space left on the device"
                if "No space left" in str(err)
                else str(err).splitlines()[-1]
            )
            raise IndexWriteFailed(
                f"cannot write the index to {folder} ({reason}); the previous index is unchanged "
                "and still in use, and the next ingest or `assistant kb rebuild` catches up"
            ) from err
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = IndexMeta(
            self.embedding_model,
            self.dimension,
            len(self),
            digest,
            name,
            self.kb_version,
            self.spec.kind,
            self.spec.nlist,
            self.spec.nprobe,
        )
        _atomic_write(folder / META_FILE, json.dumps(asdict(meta), indent=2).encode())
        # the other checksum-named files, and the older format's single file
        for old in [*folder.glob("vectors-*.faiss"), folder / "vectors.faiss"]:
            if old.name != name:
                old.unlink(missing_ok=True)

    @staticmethod
    def read_meta(folder: Path) -> IndexMeta | None:
        """The meta file's content, None when there is no index; IndexCorrupted when unreadable."""
        path = folder / META_FILE
        if not path.exists():
            if any(folder.glob("vectors-*.faiss")):
                raise IndexCorrupted(
                    f"the index in {folder} has lost its meta file; run `assistant kb rebuild`"
                )
            return None
        try:
            return IndexMeta(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise IndexCorrupted(
                f"the index in {folder} cannot be read ({err}); run `assistant kb rebuild`"
            ) from err

    @classmethod
    def load(
        cls, folder: Path, *, embedding_model: str, dimension: int, backend: Backend = "cpu"
    ) -> VectorIndex:
        """Read an index, refusing one that is corrupted or was built with another model."""
        if not folder.is_dir():
            return cls(embedding_model, dimension, backend=backend)
        with folder_lock(folder, exclusive=False):
            return cls._load(
                folder, embedding_model=embedding_model, dimension=dimension, backend=backend
            )

    @classmethod
    def _load(
        cls, folder: Path, *, embedding_model: str, dimension: int, backend: Backend
    ) -> VectorIndex:
        meta = cls.read_meta(folder)
        if meta is None:
            return cls(embedding_model, dimension, backend=backend)
        if (meta.embedding_model, meta.dimension) != (embedding_model, dimension):
            raise IndexMismatch(
                f"the index was built with {meta.embedding_model} ({meta.dimension}d) but the "
                f"embedding model is {embedding_model} ({dimension}d); run `assistant kb rebuild`"
            )
        if not meta.file:  # the format before checksum-named files: rebuilt from SQL by the caller
            log.warning(
                "the index in %s has an older format; it will be rebuilt from the database", folder
            )
            return cls(embedding_model, dimension, backend=backend, kb_version=-1)
        path = folder / meta.file
        try:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as err:
            raise IndexCorrupted(
                f"the index file {path} cannot be read ({err}); run `assistant kb rebuild`"
            ) from err
        if digest != meta.sha256:
            raise IndexCorrupted(
                f"the index in {folder} fails its checksum; run `assistant kb rebuild`"
            )
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise IndexCorrupted(
                f"the index in {folder} cannot be parsed; run `assistant kb rebuild`"
            ) from err
        spec = IndexSpec(meta.kind, meta.nlist, meta.nprobe)
        loaded = cls(
            embedding_model,
            dimension,
            index,
            spec=spec,
            backend=backend,
            kb_version=meta.kb_version,
        )
        loaded.set_nprobe(meta.nprobe)
        return loaded


_GPU_RESOURCES: list[faiss.StandardGpuResources] = []


def _gpu_resources() -> faiss.StandardGpuResources:  # pragma: no cover - needs a GPU
    if not _GPU_RESOURCES:
        _GPU_RESOURCES.append(faiss.StandardGpuResources())
    return _GPU_RESOURCES[0]


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


@contextmanager
def folder_lock(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """A host-wide lock on the index folder: one writer of its files, readers never see a pair
    half-replaced (another process's clean-up could otherwise delete the file a meta names). The
    folder itself is locked: no lock file to leave behind."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)  # releases the lock


@contextmanager
def omp_threads(threads: int) -> Iterator[None]:
    """FAISS's OpenMP threads for the calling thread only (the setting is per thread); 0 = as is."""
    if threads <= 0:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
