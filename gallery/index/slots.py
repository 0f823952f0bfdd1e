"""Store rows <-> slots of an append-only faiss index, with removal as tombstones.

Neither HNSW (no delete at all) nor 4-bit fast-scan IVF (whose ``remove_ids`` in faiss 1.15 corrupts
later adds to the same lists) can delete safely, so both indexes only ever append: each added vector
takes the next slot (faiss's sequential label), a removed vector's slot is marked dead and skipped
inside the search by an ``IDSelectorBitmap``, and the owner rebuilds once too many slots are dead.

Slots point at rows of the ``VectorStore`` rather than at ids, so turning candidates into vectors for
re-ranking is one array gather, with no id lookup on the search path. The store fills holes by moving
its last row; ``remove`` replays those moves.
"""

from __future__ import annotations

import faiss
import numpy as np

from gallery.index.persist import FileWriter, Snapshot


class RowSlots:
    def __init__(self, slot_row: np.ndarray | None = None, row_slot: np.ndarray | None = None):
        self._slot_row = np.empty(0, np.int64) if slot_row is None else slot_row
        """Store row of each slot, -1 once removed."""
        self._row_slot = np.empty(0, np.int64) if row_slot is None else row_slot
        """Slot of each store row (valid for live rows)."""
        self.dead = int((self._slot_row < 0).sum())
        self._selector: tuple[np.ndarray, faiss.IDSelector] | None = None

    @property
    def total(self) -> int:
        return len(self._slot_row)

    def append(self, rows: np.ndarray) -> None:
        """Give the vectors now at ``rows`` the next slots, in order (call alongside the faiss add)."""
        slots = np.arange(self.total, self.total + len(rows), dtype=np.int64)
        if len(rows) and rows.max() >= len(self._row_slot):
            grown = np.full(max(int(rows.max()) + 1, 2 * len(self._row_slot)), -1, np.int64)
            grown[: len(self._row_slot)] = self._row_slot
            self._row_slot = grown
        self._row_slot[rows] = slots
        self._slot_row = np.concatenate([self._slot_row, rows])
        self._selector = None

    def remove(self, steps: list[tuple[int, int]]) -> None:
        """Replay the store's removals: each step empties ``row`` and moves row ``last`` into it."""
        for row, last in steps:
            self._slot_row[self._row_slot[row]] = -1
            if row != last:
                moved = self._row_slot[last]
                self._row_slot[row] = moved
                self._slot_row[moved] = row
        self.dead += len(steps)
        self._selector = None

    def rows_of(self, slots: np.ndarray) -> np.ndarray:
        """Store rows of search-result slots; -1 (no result) stays -1."""
        return np.where(slots >= 0, self._slot_row[np.maximum(slots, 0)], -1)

    def selector(self) -> faiss.IDSelector | None:
        """Search filter admitting live slots only; None when nothing is dead (no filtering cost)."""
        if not self.dead:
            return None
        if self._selector is None:  # keep the bitmap alive with the selector: faiss does not own it
            bitmap = np.packbits(self._slot_row >= 0, bitorder="little")
            self._selector = (bitmap, faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)))
        return self._selector[1]

    def staleness(self, max_dead: float) -> str | None:
        if self.dead > max_dead * self.total:
            return f"{self.dead} of {self.total} slots hold removed vectors"
        return None

    def files(self) -> dict[str, FileWriter]:
        return {
            "ann_slot_row.npy": lambda path: np.save(path, self._slot_row),
            "ann_row_slot.npy": lambda path: np.save(path, self._row_slot),
        }

    @classmethod
    def read(cls, snapshot: Snapshot) -> RowSlots:
        return cls(np.load(snapshot.file("ann_slot_row.npy")), np.load(snapshot.file("ann_row_slot.npy")))
