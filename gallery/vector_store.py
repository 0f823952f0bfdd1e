"""The raw (id, vector) rows every index kind is built from, so rebuilds keep ids and removal is exact."""

from __future__ import annotations

import numpy as np

from gallery.index_errors import DuplicateIdError


class VectorStore:
    """Dense float32 rows keyed by int64 id.

    Removal moves the last row into the hole, so rows 0..n-1 are always live and exact search
    is one BLAS call over a contiguous matrix. Arrays may start as copy-on-write memory maps of a
    snapshot; they are copied into RAM only when an add outgrows them.
    """

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None):
        self.dim = dim
        self._ids = np.empty(0, np.int64) if ids is None else ids
        self._vectors = np.empty((0, dim), np.float32) if vectors is None else vectors
        self._n = len(self._ids)
        self._row_of: dict[int, int] = {int(i): r for r, i in enumerate(self._ids.tolist())}
        if len(self._row_of) != self._n:
            raise DuplicateIdError("stored ids are not unique")

    def __len__(self) -> int:
        return self._n

    def __contains__(self, id_: int) -> bool:
        return int(id_) in self._row_of

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
        get = self._row_of.get
        return np.fromiter((get(i, -1) for i in ids.tolist()), np.int64, len(ids))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        present = [i for i in ids.tolist() if i in self._row_of]
        if present:
            raise DuplicateIdError(f"ids already in the index: {present[:10]}")
        self._reserve(self._n + len(ids))
        end = self._n + len(ids)
        self._ids[self._n : end] = ids
        self._vectors[self._n : end] = vectors
        self._row_of.update(zip(ids.tolist(), range(self._n, end)))
        self._n = end

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Remove the ids that are present; return those ids."""
        removed = []
        for id_ in ids.tolist():
            row = self._row_of.pop(id_, None)
            if row is None:
                continue
            removed.append(id_)
            last = self._n - 1
            if row != last:
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._vectors[row] = self._vectors[last]
                self._row_of[moved] = row
            self._n = last
        return np.asarray(removed, np.int64)

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._ids):
            return
        capacity = max(needed, 2 * len(self._ids), 1024)
        ids = np.empty(capacity, np.int64)
        vectors = np.empty((capacity, self.dim), np.float32)
        ids[: self._n] = self._ids[: self._n]
        vectors[: self._n] = self._vectors[: self._n]
        self._ids, self._vectors = ids, vectors
