"""Exact search on a GPU when faiss has GPU support and sees a device; nothing here runs otherwise.

On a GPU, brute force over every stored vector is exact and, up to tens of millions of vectors, faster
than any CPU approximate index, so the GPU path keeps a flat replica of the store instead of moving the
approximate index. The replica is rebuilt lazily on the first search after a mutation.
"""

from __future__ import annotations

import functools
import logging

import faiss
import numpy as np

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    """True only when this faiss build has GPU support and at least one GPU is visible."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@functools.cache
def _resources() -> faiss.StandardGpuResources:
    """One set of GPU scratch buffers per process (each set reserves GPU memory), made on first use."""
    return faiss.StandardGpuResources()


class GpuExactSearch:
    """A GPU flat inner-product replica of the store's rows, labelled by row number."""

    def __init__(self, dim: int):
        self._dim = dim
        self._index: faiss.Index | None = None
        self._generation = -1

    def search(self, matrix: np.ndarray, generation: int, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (sims, rows) of ``queries`` over a non-empty ``matrix``; re-uploads when ``generation`` changed."""
        if self._index is None or generation != self._generation:
            index = faiss.GpuIndexFlatIP(_resources(), self._dim)
            index.add(matrix)
            self._index, self._generation = index, generation
            log.info("uploaded %d vectors to the GPU replica", len(matrix))
        found = min(k, len(matrix))
        sims, rows = self._index.search(queries, found)
        if found < k:  # GPU search wants k <= ntotal; pad like the CPU paths do
            sims = np.pad(sims, ((0, 0), (0, k - found)), constant_values=-np.inf)
            rows = np.pad(rows, ((0, 0), (0, k - found)), constant_values=-1)
        return sims, rows
