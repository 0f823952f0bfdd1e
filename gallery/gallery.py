"""The registered likenesses as one object: database rows, reference files and the FAISS index.

The database is the source of truth; the index is derived from the stored embeddings, saved as
crash-safe snapshots, and rebuilt from the database whenever it does not match the database's
gallery version (another process changed the gallery, or a snapshot was lost).
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from gallery.enroll import AcceptedReference, EnrollmentResult
from gallery.index.vector_index import VectorIndex
from gallery.index.config import IndexConfig
from gallery.index.errors import SnapshotNotFoundError, VectorIndexError
from gallery.store import GalleryStore
from pipeline.types import IdentityInfo, ReferenceHit

log = logging.getLogger(__name__)

FACE_DIM = 512


@contextmanager
def gallery_lock(home: Path) -> Iterator[None]:
    """One writer of index snapshots (faces and characters) at a time across processes on a home
    directory. flock does not nest across handles: never take it twice in one call chain."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".gallery.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_snapshot(index: VectorIndex, directory: Path, gallery_version: int) -> None:
    """Save an index with the database gallery version it reflects, inside its checksummed manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    index.save(directory, extra={"gallery_version": gallery_version})


def load_snapshot(directory: Path, config: IndexConfig, gallery_version: int, ids: set[int]) -> VectorIndex | None:
    """The saved index when it was written for this gallery version and holds exactly `ids`, else
    None (the caller rebuilds from the database)."""
    try:
        index = VectorIndex.load(directory, config)
    except SnapshotNotFoundError:
        return None
    except (VectorIndexError, OSError, ValueError) as exc:
        log.warning("index snapshot in %s unusable, rebuilding from the database: %s", directory, exc)
        return None
    if index.extra.get("gallery_version") == gallery_version and set(index.ids().tolist()) == ids:
        return index
    return None


def face_reference_fields(ref: AcceptedReference, stored_path: str) -> dict:
    """The reference_images row of one accepted face reference."""
    return dict(source_name=ref.path.name, sha256=ref.sha256, stored_path=stored_path,
                embedding=ref.embedding.astype(np.float32).tobytes(),
                face={"bbox": ref.bbox, "det_score": ref.det_score, "sharpness": ref.sharpness, "yaw": ref.yaw})


class Gallery:
    """Implements the pipeline's GallerySearcher over the face index."""

    def __init__(self, home: Path, store: GalleryStore, index_config: IndexConfig | None = None):
        self.home = Path(home)
        self.store = store
        self._index_config = index_config or IndexConfig()
        self._index_dir = self.home / "index" / "faces"
        self._references_dir = self.home / "references"
        self._index: VectorIndex | None = None
        self._owners: dict[int, str] = {}
        self._identities: dict[str, IdentityInfo] = {}
        self.version = -1

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load the current gallery version if it changed; True when something was reloaded."""
        current = self.store.version()
        if current == self.version and self._index is not None:
            return False
        index = load_snapshot(self._index_dir, self._index_config, current, set(self.store.reference_owners()))
        if index is None:
            index = self._build(self.store.references())
            with self._lock():
                save_snapshot(index, self._index_dir, current)
        self._use(index, current)
        return True

    def _use(self, index: VectorIndex, version: int) -> None:
        self._owners = self.store.reference_owners()
        self._identities = {info.id: info for info, _ in self.store.identities()}
        self._index, self.version = index, version

    def _build(self, references) -> VectorIndex:
        index = VectorIndex(FACE_DIM, self._index_config)
        if references:
            index.add(np.array([r.id for r in references], dtype=np.int64),
                      np.stack([r.embedding for r in references]))
        return index

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]:
        self.refresh()
        if len(self._index) == 0:
            return [[] for _ in range(len(embeddings))]
        sims, ids = self._index.search(np.asarray(embeddings, dtype=np.float32), min(k, len(self._index)))
        return [[ReferenceHit(self._owners[int(i)], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(sims, ids)]

    def identity(self, identity_id: str) -> IdentityInfo:
        return self._identities[identity_id]

    def identities(self, owner: str | None = None) -> list[tuple[IdentityInfo, int]]:
        return self.store.identities(owner)

    # -- changing ------------------------------------------------------------------------------

    def _lock(self):
        return gallery_lock(self.home)

    def add(self, name: str, kind: str, owner: str, policy: str, authorized: list[str],
            enrollment: EnrollmentResult, match_threshold: float | None = None) -> IdentityInfo:
        """Register an identity from accepted references; copies of the photos stay private to it.
        `match_threshold` raises the match threshold for this identity alone (known look-alikes)."""
        if not enrollment.accepted:
            raise ValueError("no reference was accepted; nothing registered")
        with self._lock():
            staged = self._references_dir / f".staging-{os.getpid()}"
            staged.mkdir(parents=True, exist_ok=True, mode=0o700)
            references = []
            for ref in enrollment.accepted:
                target = staged / f"{ref.sha256}{ref.path.suffix.lower()}"
                shutil.copyfile(ref.path, target)
                references.append(face_reference_fields(ref, target.name))
            info, ids, version = self.store.add_identity(name, kind, owner, policy, authorized, references,
                                                         match_threshold)
            os.replace(staged, self._references_dir / info.id)
            self.refresh_after_change(version, add=(ids, [r.embedding for r in enrollment.accepted]))
            return info

    def remove(self, identity_id: str, owner: str | None = None) -> IdentityInfo:
        """Delete an identity for good: rows, vectors (new snapshot, old ones pruned) and photos."""
        with self._lock():
            info = self.store.identity(identity_id)
            if info is None or (owner is not None and info.owner != owner):
                raise KeyError(f"no likeness with id {identity_id}")
            ids, _, version = self.store.remove_identity(identity_id, owner)
            shutil.rmtree(self._references_dir / identity_id, ignore_errors=True)
            self.refresh_after_change(version, remove=ids)
            return info

    def refresh_after_change(self, version: int, add=None, remove=None) -> None:
        """Apply one change to the loaded index when it is the version just before, else rebuild
        from the database; then save. The caller holds the gallery lock."""
        if self._index is None or self.version != version - 1:
            index = self._build(self.store.references())
        else:
            index = self._index
            if add is not None:
                index.add(np.array(add[0], dtype=np.int64), np.stack(add[1]))
            if remove:
                index.remove(np.array(remove, dtype=np.int64))
        save_snapshot(index, self._index_dir, version)
        self._use(index, version)
