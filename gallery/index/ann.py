"""Approximate-index backends behind one small interface, so VectorIndex can swap them by size."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from gallery.index.hnsw import HnswIndex
from gallery.index.ivf import IvfPqIndex
from gallery.index.config import IndexConfig
from gallery.index.persist import FileWriter, Snapshot

MIN_APPROX_SIZE = 1_000
"""Below this many vectors an approximate index is pointless (and IVF cannot train): search exactly."""


class AnnIndex(Protocol):
    """An approximate index nominating candidate rows of the ``VectorStore``; VectorIndex re-scores them.

    It mirrors the store row for row: ``add`` gets the rows new vectors took, ``remove`` the store's
    (emptied row, moved last row) steps.
    """

    kind: str

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, steps: list[tuple[int, int]]) -> None: ...

    def candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        """(q, n) int64 candidate store rows per query, -1 padded."""
        ...

    def staleness(self, size: int) -> str | None:
        """Why the index should be rebuilt or re-trained now (drift, growth, tombstones), else None."""
        ...

    def files(self) -> dict[str, FileWriter]:
        """Snapshot files: name -> function writing it."""
        ...

    def meta(self) -> dict[str, Any]:
        """JSON-able state saved in the snapshot manifest."""
        ...


_BACKENDS: dict[str, Any] = {"ivfpq": IvfPqIndex, "hnsw": HnswIndex}


def target_kind(config: IndexConfig, size: int, current: str | None) -> str:
    """The index kind that should serve ``size`` vectors.

    'auto' switches to ivfpq above ``exact_max`` and back to flat only below half of it, so a
    gallery hovering around the threshold does not rebuild on every change.
    """
    if size < MIN_APPROX_SIZE:
        return "flat"
    if config.kind != "auto":
        return config.kind
    if size > config.exact_max or (current not in (None, "flat") and size > config.exact_max // 2):
        return "ivfpq"
    return "flat"


def build_ann(kind: str, dim: int, config: IndexConfig, vectors: np.ndarray) -> AnnIndex:
    """Train (where needed) and fill a new approximate index of ``kind`` over store rows 0..n-1."""
    return _BACKENDS[kind].build(dim, config, vectors)


def load_ann(snapshot: Snapshot, config: IndexConfig) -> AnnIndex | None:
    """The approximate index saved in ``snapshot``, or None when it holds none."""
    ann_meta = snapshot.meta.get("ann")
    if ann_meta is None:
        return None
    return _BACKENDS[ann_meta["kind"]].read(snapshot, ann_meta, config)
