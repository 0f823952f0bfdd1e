"""The gallery's vector index: inner-product search over L2-normalised embeddings keyed by stable ids.

Raw vectors always live in a ``VectorStore``; on top of it an approximate index (IVF-PQ or HNSW)
is built once the gallery outgrows exact search. Approximate indexes only nominate candidates: the
final ranking and similarities always come from the exact stored vectors, so thresholds mean the same
whatever the index kind. Builds and re-trains run on a background thread from a copy of the store,
mutations made meanwhile are journalled and replayed before the new index is swapped in.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Literal
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from gallery.index import persist
from gallery.index.ann import MIN_APPROX_SIZE, AnnIndex, build_ann, load_ann, target_kind
from gallery.index.exact import exact_top_k
from gallery.index.config import IndexConfig
from gallery.index.errors import DuplicateIdError, IndexCorruptError, SnapshotNotFoundError, VectorIndexError
from gallery.index.gpu import GpuExactSearch, gpu_available
from gallery.index.vector_store import Removal, VectorStore

__all__ = [
    "DuplicateIdError",
    "IndexConfig",
    "IndexCorruptError",
    "SnapshotNotFoundError",
    "VectorIndex",
    "VectorIndexError",
]

log = logging.getLogger(__name__)

_NORM_TOLERANCE = 1e-3
_RERANK_BLOCK = 1 << 22
"""Floats gathered per re-rank block (16 MiB), bounding the temporary for large query batches."""



@dataclass(frozen=True)
class _Added:
    rows: np.ndarray
    vectors: np.ndarray


_Change = _Added | Removal


class VectorIndex:
    """Inner-product index over L2-normalised float32 vectors keyed by stable int64 ids.

    Thread-safe: one lock guards mutations and searches; background builds hold it only to copy the
    store and to swap the finished index in.
    """

    def __init__(self, dim: int = 512, config: IndexConfig | None = None):
        self.dim = dim
        self.config = config or IndexConfig()
        if dim % self.config.pq_m:
            raise ValueError(f"pq_m={self.config.pq_m} must divide dim={dim}")
        self.version = 0
        self.extra: dict[str, object] = {}
        """Caller metadata of the snapshot last saved or loaded (see ``save``)."""
        self.last_build: dict[str, object] | None = None
        """Kind, size, seconds, reason (and error, if it failed) of the latest approximate build."""
        self._store = VectorStore(dim)
        self._ann: AnnIndex | None = None
        self._journal: list[_Change] | None = None
        self._builder: threading.Thread | None = None
        self._generation = 0
        self._gpu = GpuExactSearch(dim) if self.config.use_gpu and gpu_available() else None
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._store)

    @property
    def kind(self) -> str:
        """The strategy answering searches now: 'gpu-flat', 'flat', 'ivfpq' or 'hnsw'."""
        if self._gpu is not None and len(self._store) >= MIN_APPROX_SIZE:
            return "gpu-flat"
        return self._ann.kind if self._ann is not None else "flat"

    @property
    def building(self) -> bool:
        return self._builder is not None

    def info(self) -> dict[str, object]:
        """What serves searches and how it was built, for logs, the CLI and benchmarks."""
        with self._lock:
            return {
                "kind": self.kind,
                "size": len(self._store),
                "version": self.version,
                "building": self.building,
                "ann": self._ann.meta() if self._ann is not None else None,
                "last_build": self.last_build,
            }

    def ids(self) -> np.ndarray:
        """All live ids (a copy, in no particular order)."""
        with self._lock:
            return self._store.ids.copy()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids; an id already present raises ``DuplicateIdError`` (a ValueError)."""
        ids = _as_ids(ids)
        vectors = self._as_vectors(vectors, "vectors")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        with self._lock:
            first = len(self._store)
            self._store.add(ids, vectors)
            self._changed(_Added(np.arange(first, len(self._store), dtype=np.int64), vectors))

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent or repeated ones are ignored); return how many were removed."""
        ids = np.unique(_as_ids(ids, unique=False))
        with self._lock:
            removal = self._store.remove(ids)
            if len(removal.ids):
                self._changed(removal)
            return len(removal.ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: ``(sims (q,k) float32, ids (q,k) int64)``, best first.

        Where fewer than k vectors exist the tail holds id -1 and similarity -inf.
        A 1-D query is treated as a batch of one.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = self._as_vectors(np.atleast_2d(queries), "queries")
        with self._lock:
            if not len(self._store):
                return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
            if self._gpu is not None and len(self._store) >= MIN_APPROX_SIZE:
                sims, rows = self._gpu.search(self._store.matrix, self._generation, queries, k)
                return _finish(sims, rows, self._store.ids)
            if self._ann is None:
                sims, rows = exact_top_k(queries, self._store.matrix, k)
                return _finish(sims, rows, self._store.ids)
            return self._rerank(queries, self._ann.candidates(queries, max(k, self.config.rerank)), k)

    def vector(self, id_: int) -> np.ndarray:
        """The stored vector of one id; KeyError if absent."""
        return self.vectors(np.array([id_]))[0]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ids, in order; KeyError naming the absent ones."""
        ids = _as_ids(ids, unique=False)
        with self._lock:
            rows = self._store.rows(ids)
            if (rows < 0).any():
                raise KeyError(f"ids not in the index: {ids[rows < 0][:10].tolist()}")
            return self._store.matrix[rows]

    def wait_for_build(self, timeout: float | None = None) -> bool:
        """Block until a background build finishes; True when none is running any more."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return self._builder is None

    def save(self, directory: Path, extra: dict[str, object] | None = None) -> int:
        """Write a crash-safe snapshot of what is serving now; return its version.

        The version is newer than ``self.version`` and than any snapshot already in ``directory``.
        ``extra`` (JSON-able, e.g. the database change sequence the snapshot reflects) is stored in the
        checksummed manifest, so it is exactly as durable as the vectors; ``load`` returns it as ``extra``.
        One writer per directory. Searches wait while the snapshot is written.
        """
        directory = Path(directory)
        with self._lock:
            version = max([self.version, *persist.versions_on_disk(directory)]) + 1
            ids, vectors = self._store.ids, self._store.matrix
            writers = {
                "ids.npy": lambda path: np.save(path, ids),
                "vectors.npy": lambda path: np.save(path, vectors),
            }
            meta: dict[str, object] = {"dim": self.dim, "count": len(ids), "extra": extra or {}}
            if self._ann is not None:
                writers.update(self._ann.files())
                meta["ann"] = self._ann.meta()
            persist.write_snapshot(directory, version, writers, meta, self.config.keep_snapshots)
            self.version, self.extra = version, dict(extra or {})
            return version

    @classmethod
    def load(cls, directory: Path, config: IndexConfig | None = None, mmap: bool = True) -> VectorIndex:
        """Load the newest snapshot whose checksums verify.

        Raises ``SnapshotNotFoundError`` when there is none, ``IndexCorruptError`` when none verifies.
        With ``mmap`` the stored vectors are mapped copy-on-write rather than read, so processes
        loading the same snapshot share pages; the (small) approximate index is always read.
        A saved approximate index of another kind than ``config`` asks for is rebuilt, not loaded.
        """
        snapshot = persist.read_latest(Path(directory))
        mode: Literal["c"] | None = "c" if mmap else None
        index = cls(int(snapshot.meta["dim"]), config)
        index._store = VectorStore(
            index.dim,
            np.load(snapshot.file("ids.npy"), mmap_mode=mode),
            np.load(snapshot.file("vectors.npy"), mmap_mode=mode),
        )
        saved_kind = snapshot.meta.get("ann", {}).get("kind")
        if saved_kind is not None and saved_kind == target_kind(index.config, len(index), saved_kind):
            index._ann = load_ann(snapshot, index.config)
        index.version, index.extra = snapshot.version, dict(snapshot.meta.get("extra", {}))
        with index._lock:
            index._maintain()
        return index

    def _changed(self, change: _Change) -> None:
        self._generation += 1
        if self._ann is not None:
            _replay(self._ann, change)
        if self._journal is not None:  # a build is working from before this change: replay it after
            if isinstance(change, _Added):  # the caller may reuse its array
                change = dataclasses.replace(change, vectors=change.vectors.copy())
            self._journal.append(change)
        self._maintain()

    def _maintain(self) -> None:
        """Start a build when the serving index is the wrong kind for the size, or has gone stale."""
        current = self._ann.kind if self._ann is not None else None
        want = target_kind(self.config, len(self._store), current)
        if want == "flat":
            self._ann = None
            return
        if self._builder is not None:
            return
        if want != current or self._ann is None:
            reason: str | None = f"{current or 'flat'} -> {want}"
        else:
            reason = self._ann.staleness(len(self._store))
        if reason is None:
            return
        vectors = self._store.matrix.copy()
        self._journal = []
        if self.config.background:
            self._builder = threading.Thread(
                target=self._build_in_background,
                args=(faiss.omp_get_max_threads(), want, vectors, reason),
                name="vector-index-build",
                daemon=True,
            )
            self._builder.start()
        else:
            self._build(want, vectors, reason)

    def _build_in_background(self, threads: int, kind: str, vectors: np.ndarray, reason: str) -> None:
        """A new thread starts with OpenMP's default thread count; build with the caller's instead."""
        faiss.omp_set_num_threads(threads)
        self._build(kind, vectors, reason)

    def _build(self, kind: str, vectors: np.ndarray, reason: str) -> None:
        log.info("building %s index over %d vectors: %s", kind, len(vectors), reason)
        report: dict[str, object] = {"kind": kind, "size": len(vectors), "reason": reason}
        started = time.perf_counter()
        try:
            ann = build_ann(kind, self.dim, self.config, vectors)
        except Exception as exc:  # a failed build must not take search down: exact/old index keeps serving
            log.exception("building %s index failed", kind)
            ann, report["error"] = None, repr(exc)
        with self._lock:
            if ann is not None:
                for change in self._journal or []:
                    _replay(ann, change)
                if target_kind(self.config, len(self._store), kind) == kind:
                    self._ann = ann
            report["seconds"] = round(time.perf_counter() - started, 3)
            self.last_build = report
            self._journal = None
            self._builder = None

    def _rerank(self, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact similarities for approximate candidate rows; keep the best k."""
        sims = np.full(rows.shape, -np.inf, np.float32)
        matrix = self._store.matrix
        step = max(1, _RERANK_BLOCK // (rows.shape[1] * self.dim))
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            gathered = matrix[np.maximum(block, 0)]
            scored = np.matmul(gathered, queries[start : start + step, :, None])[..., 0]
            sims[start : start + step] = np.where(block >= 0, scored, -np.inf)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        top_sims = np.take_along_axis(sims, order, 1)
        top_rows = np.where(np.isfinite(top_sims), np.take_along_axis(rows, order, 1), -1)
        if top_rows.shape[1] < k:
            pad = ((0, 0), (0, k - top_rows.shape[1]))
            top_sims = np.pad(top_sims, pad, constant_values=-np.inf)
            top_rows = np.pad(top_rows, pad, constant_values=-1)
        return _finish(top_sims, top_rows, self._store.ids)

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(np.abs(norms - 1.0) <= _NORM_TOLERANCE):
            raise ValueError(f"{what} must be finite and L2-normalised")
        return vectors


def _replay(ann: AnnIndex, change: _Change) -> None:
    if isinstance(change, _Added):
        ann.add(change.rows, change.vectors)
    else:
        ann.remove(change.steps)


def _finish(sims: np.ndarray, rows: np.ndarray, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map result rows to ids; empty slots (row -1) become id -1, similarity -inf."""
    missing = rows < 0
    ids = np.full(rows.shape, -1, np.int64)
    ids[~missing] = row_ids[rows[~missing]]
    sims = sims.astype(np.float32, copy=False)
    sims[missing] = -np.inf
    return sims, ids


def _as_ids(ids: np.ndarray, unique: bool = True) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if (ids < 0).any():
        raise ValueError("ids must be non-negative (-1 marks 'no result')")
    if unique and len(np.unique(ids)) != len(ids):
        raise DuplicateIdError("ids repeat within one call")
    return ids
