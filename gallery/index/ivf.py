"""IVF with 4-bit fast-scan product quantisation: m/2 bytes per vector, cheap to train, fast to scan.

Append-only (see ``ann_slots``): removals are tombstones skipped inside the list scan. IVF quality
depends on how well the trained centroids fit the data, so the index tracks how far newly added
vectors fall from their centroid and asks for a re-train when that drifts, when the gallery outgrows
the list count it was trained for, or when too many slots are dead. A re-train re-adds every stored
vector from the store, whose ids it never touches, so ids survive it unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from gallery.index.slots import RowSlots
from gallery.index.config import IndexConfig
from gallery.index.persist import FileWriter, Snapshot

_ANN_FILE = "ann.faiss"
_DRIFT_SAMPLE = 1_024
_DRIFT_MIN_SHARE = 0.05
"""Judge drift only once this share of the trained size has been added: fewer cannot hurt recall much."""
_MIN_POINTS_PER_LIST = 32


@dataclass
class DriftStats:
    """Coarse-quantiser fit (similarity to the nearest centroid) at training time versus for vectors added since."""

    trained_size: int
    baseline: float
    """Mean similarity of held-out vectors to their nearest centroid, right after training."""
    added: int = 0
    sampled: int = 0
    similarity_sum: float = 0.0

    def ratio(self) -> float:
        """How many times worse added vectors fit than the baseline (1 = as well; > 1 = drifted)."""
        if not self.sampled:
            return 1.0
        return self.baseline / max(self.similarity_sum / self.sampled, 1e-6)


def default_nlist(size: int) -> int:
    """About sqrt(n) lists, a power of two: balances list scanning against centroid search and training."""
    return int(2 ** max(4, round(np.log2(max(size, 1)) / 2)))


class IvfPqIndex:
    kind = "ivfpq"

    def __init__(self, index: faiss.Index, slots: RowSlots, config: IndexConfig, drift: DriftStats):
        self._index = index
        self._ivf = faiss.extract_index_ivf(index)
        self._slots = slots
        self._config = config
        self.drift = drift

    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist)

    @property
    def nprobe(self) -> int:
        return min(self.nlist, self._config.nprobe or max(32, self.nlist // 10))

    @classmethod
    def build(cls, dim: int, config: IndexConfig, vectors: np.ndarray) -> IvfPqIndex:
        n = len(vectors)
        nlist = max(1, min(config.nlist or default_nlist(n), n // _MIN_POINTS_PER_LIST))
        index = faiss.index_factory(dim, f"IVF{nlist},PQ{config.pq_m}x4fs", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.spherical = True
        ivf.cp.seed = config.seed
        rng = np.random.default_rng(config.seed)
        sample = rng.permutation(n)[: config.train_size + _DRIFT_SAMPLE]
        holdout, train = sample[:_DRIFT_SAMPLE], sample[_DRIFT_SAMPLE:]
        if len(train) < nlist:  # small gallery: train on everything, measure the baseline in-sample
            train = sample
        index.train(vectors[np.sort(train)])
        built = cls(index, RowSlots(), config, DriftStats(trained_size=n, baseline=0.0))
        built.drift.baseline = float(built._fit(vectors[np.sort(holdout)]).mean())
        index.add(vectors)
        built._slots.append(np.arange(n, dtype=np.int64))
        return built

    @classmethod
    def read(cls, snapshot: Snapshot, meta: dict[str, Any], config: IndexConfig) -> IvfPqIndex:
        index = faiss.read_index(str(snapshot.file(_ANN_FILE)))
        return cls(index, RowSlots.read(snapshot), config, DriftStats(**meta["drift"]))

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        sample = self._fit(vectors[:_DRIFT_SAMPLE])
        self.drift.added += len(vectors)
        self.drift.sampled += len(sample)
        self.drift.similarity_sum += float(sample.sum())
        self._index.add(vectors)
        self._slots.append(rows)

    def remove(self, steps: list[tuple[int, int]]) -> None:
        self._slots.remove(steps)

    def candidates(self, queries: np.ndarray, n: int) -> np.ndarray:
        params = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=self._slots.selector())
        _, slots = self._index.search(queries, n, params=params)
        return self._slots.rows_of(slots)

    def staleness(self, size: int) -> str | None:
        trained, growth = self.drift.trained_size, self._config.growth_ratio
        if size > trained * growth or size * growth < trained:
            return f"size {size} is far from the {trained} it was trained for"
        if self.drift.added >= trained * _DRIFT_MIN_SHARE and self.drift.ratio() > self._config.drift_ratio:
            return f"added vectors fit the centroids {self.drift.ratio():.2f}x worse than at training"
        return self._slots.staleness(self._config.max_tombstones)

    def files(self) -> dict[str, FileWriter]:
        return {_ANN_FILE: lambda path: faiss.write_index(self._index, str(path)), **self._slots.files()}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "nlist": self.nlist, "dead": self._slots.dead, "drift": asdict(self.drift)}

    def _fit(self, vectors: np.ndarray) -> np.ndarray:
        """Similarity of each vector to its nearest centroid: low = the centroids do not describe it."""
        if not len(vectors):
            return np.empty(0, np.float32)
        sims, _ = self._ivf.quantizer.search(vectors, 1)
        return sims[:, 0]
