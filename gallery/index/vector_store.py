"""The raw (id, vector) rows every index kind is built from, so rebuilds keep ids and removal is exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gallery.index.id_map import IdMap
from gallery.index.errors import DuplicateIdError


@dataclass(frozen=True)
class Removal:
    """What one ``remove`` did: the ids removed and, per id, (emptied row, last row moved into it)."""

    ids: np.ndarray
    steps: list[tuple[int, int]]


class VectorStore:
    """Dense float32 rows keyed by int64 id.

    Removal moves the last row into the hole, so rows 0..n-1 are always live and exact search
    is one scan over a contiguous matrix. Arrays may start as copy-on-write memory maps of a
    snapshot; they are copied into RAM only when an add outgrows them.
    """

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None):
        self.dim = dim
        self._ids = np.empty(0, np.int64) if ids is None else ids
        self._vectors = np.empty((0, dim), np.float32) if vectors is None else vectors
        self._n = len(self._ids)
        self._row_of = IdMap(self._ids)
        if self._row_of.has_duplicates():
            raise DuplicateIdError("stored ids are not unique")

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> np.ndarray:
        """Live ids in row order (a view: copy before keeping it across mutations)."""
        return self._ids[: self._n]

    @property
    def matrix(self) -> np.ndarray:
        """Live vectors in row order (a view: copy before keeping it across mutations)."""
        return self._vectors[: self._n]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where the id is absent."""
        return self._row_of.get(ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        present = ids[self._row_of.get(ids) >= 0]
        if len(present):
            raise DuplicateIdError(f"ids already in the index: {present[:10].tolist()}")
        self._reserve(self._n + len(ids))
        end = self._n + len(ids)
        self._ids[self._n : end] = ids
        self._vectors[self._n : end] = vectors
        self._row_of.insert(ids, np.arange(self._n, end, dtype=np.int64))
        self._n = end

    def remove(self, ids: np.ndarray) -> Removal:
        """Remove the (unique) ids that are present."""
        removed = ids[self._row_of.get(ids) >= 0]
        steps = []
        for id_ in removed.tolist():
            row = int(self._row_of.get(np.array([id_]))[0])
            last = self._n - 1
            if row != last:
                moved = self._ids[last : last + 1].copy()
                self._ids[row] = moved[0]
                self._vectors[row] = self._vectors[last]
                self._row_of.set(moved, np.array([row]))
            steps.append((row, last))
            self._n = last
        self._row_of.delete(removed)
        return Removal(removed, steps)

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._ids):
            return
        capacity = max(needed, 2 * len(self._ids), 1024)
        ids = np.empty(capacity, np.int64)
        vectors = np.empty((capacity, self.dim), np.float32)
        ids[: self._n] = self._ids[: self._n]
        vectors[: self._n] = self._vectors[: self._n]
        self._ids, self._vectors = ids, vectors
