"""The gallery's vector index: inner-product search over L2-normalised embeddings keyed by stable ids."""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from gallery import index_persist
from gallery.index_config import IndexConfig
from gallery.index_errors import (
    DuplicateIdError,
    IndexCorruptError,
    SnapshotNotFoundError,
    VectorIndexError,
)
from gallery.vector_store import VectorStore

__all__ = [
    "DuplicateIdError",
    "IndexConfig",
    "IndexCorruptError",
    "SnapshotNotFoundError",
    "VectorIndex",
    "VectorIndexError",
]

_NORM_TOLERANCE = 1e-3


class VectorIndex:
    """Inner-product index over L2-normalised float32 vectors keyed by stable int64 ids.

    The raw vectors are always kept (``VectorStore``), so exact search is always possible and any
    approximate index can be rebuilt or re-trained without changing ids.
    """

    def __init__(self, dim: int = 512, config: IndexConfig | None = None):
        self.dim = dim
        self.config = config or IndexConfig()
        self.version = 0
        self._store = VectorStore(dim)
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._store)

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
            self._store.add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); return how many were removed."""
        ids = _as_ids(ids)
        with self._lock:
            return len(self._store.remove(ids))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: ``(sims (q,k) float32, ids (q,k) int64)``, best first.

        Where fewer than k vectors exist the tail holds id -1 and similarity -inf.
        A 1-D query is treated as a batch of one.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = self._as_vectors(np.atleast_2d(queries), "queries")
        with self._lock:
            return self._exact(queries, k)

    def vector(self, id_: int) -> np.ndarray:
        """The stored vector of one id; KeyError if absent."""
        return self.vectors(np.array([id_]))[0]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ids, in order; KeyError naming the absent ones."""
        ids = _as_ids(ids)
        with self._lock:
            rows = self._store.rows(ids)
            if (rows < 0).any():
                raise KeyError(f"ids not in the index: {ids[rows < 0][:10].tolist()}")
            return self._store.matrix[rows]

    def save(self, directory: Path) -> int:
        """Write a crash-safe snapshot and return its version (newer than any already there)."""
        directory = Path(directory)
        with self._lock:
            version = max([self.version, *index_persist.versions_on_disk(directory)]) + 1
            ids, vectors = self._store.ids, self._store.matrix
            writers = {
                "ids.npy": lambda p: np.save(p, ids),
                "vectors.npy": lambda p: np.save(p, vectors),
            }
            meta = {"dim": self.dim, "count": len(ids)}
            index_persist.write_snapshot(directory, version, writers, meta, self.config.keep_snapshots)
            self.version = version
            return version

    @classmethod
    def load(cls, directory: Path, config: IndexConfig | None = None, mmap: bool = True) -> VectorIndex:
        """Load the newest snapshot whose checksums verify.

        Raises ``SnapshotNotFoundError`` when there is none, ``IndexCorruptError`` when none verifies.
        With ``mmap`` the stored vectors are mapped copy-on-write instead of read into memory.
        """
        snapshot = index_persist.read_latest(Path(directory))
        mode = "c" if mmap else None
        ids = np.load(snapshot.path / "ids.npy", mmap_mode=mode)
        vectors = np.load(snapshot.path / "vectors.npy", mmap_mode=mode)
        index = cls(int(snapshot.meta["dim"]), config)
        index._store = VectorStore(index.dim, ids, vectors)
        index.version = snapshot.version
        return index

    def _exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims, rows = faiss.knn(queries, self._store.matrix, k, metric=faiss.METRIC_INNER_PRODUCT)
        return _finish(sims, rows, self._store.ids)

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(np.abs(norms - 1.0) <= _NORM_TOLERANCE):
            raise ValueError(f"{what} must be finite and L2-normalised")
        return vectors


def _finish(sims: np.ndarray, rows: np.ndarray, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map result rows to ids; empty slots (row -1) become id -1, similarity -inf."""
    missing = rows < 0
    ids = np.full(rows.shape, -1, np.int64)
    ids[~missing] = row_ids[rows[~missing]]
    sims[missing] = -np.inf
    return sims, ids


def _as_ids(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if (ids < 0).any():
        raise ValueError("ids must be non-negative (-1 marks 'no result')")
    if len(np.unique(ids)) != len(ids):
        raise DuplicateIdError("ids repeat within one call")
    return ids
