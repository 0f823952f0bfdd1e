"""HNSW over float16 copies of the vectors: the lowest latency per query, at a slow build.

Append-only (see ``ann_slots``): removals are tombstones skipped during the graph walk, and the owner
rebuilds the graph when too many nodes are dead.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from gallery.index.slots import RowSlots
from gallery.index.config import IndexConfig
from gallery.index.persist import FileWriter, Snapshot

_ANN_FILE = "ann.faiss"


class HnswIndex:
    kind = "hnsw"

    def __init__(self, index: faiss.Index, slots: RowSlots, config: IndexConfig):
        self._index = index
        self._slots = slots
        self._config = config

    @classmethod
    def build(cls, dim: int, config: IndexConfig, vectors: np.ndarray) -> HnswIndex:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.train(vectors[:1])  # fp16 needs no statistics
        built = cls(index, RowSlots(), config)
        built.add(np.arange(len(vectors), dtype=np.int64), vectors)
        return built

    @classmethod
    def read(cls, snapshot: Snapshot, meta: dict[str, Any], config: IndexConfig) -> HnswIndex:
        return cls(faiss.read_index(str(snapshot.file(_ANN_FILE))), RowSlots.read(snapshot), config)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add(vectors)
        self._slots.append(rows)

    def remove(self, steps: list[tuple[int, int]]) -> None:
        self._slots.remove(steps)

    def candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        params = faiss.SearchParametersHNSW(efSearch=max(self._config.ef_search, n), sel=self._slots.selector())
        _, slots = self._index.search(queries, n, params=params)
        return self._slots.rows_of(slots)

    def staleness(self, size: int) -> str | None:
        return self._slots.staleness(self._config.max_tombstones)

    def files(self) -> dict[str, FileWriter]:
        return {_ANN_FILE: lambda path: faiss.write_index(self._index, str(path)), **self._slots.files()}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "slots": self._slots.total, "dead": self._slots.dead}
