"""The registered likenesses as searchable galleries: database rows, reference files and vector indexes.

Faces and characters are the same mechanism (`VectorGallery`) over different vectors: the face index
holds the ArcFace embeddings of reference faces, the character index the CLIP embeddings of
character references (gallery/characters.py). The database is the source of truth; each index is
derived from its stored embeddings, saved as crash-safe snapshots under home/index/<folder>, and
rebuilt from the database whenever it does not match the database's gallery version (another process
changed the gallery, or a snapshot was lost). One gallery version counts changes to both.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gallery.characters import CharacterEnrollment, CharacterReference
from gallery.enroll import AcceptedReference, EnrollmentResult
from gallery.index.config import IndexConfig
from gallery.index.errors import SnapshotNotFoundError, VectorIndexError
from gallery.index.vector_index import VectorIndex
from gallery.store import GalleryStore, StoredReference
from pipeline.image_embedder import EMBED_DIM
from pipeline.types import IdentityInfo, ReferenceHit

log = logging.getLogger(__name__)

FACE_DIM = 512


@dataclass(frozen=True)
class IndexKind:
    """What tells one gallery's index from the other's; everything else is shared."""

    folder: str                                                  # home/index/<folder>
    dimension: int
    owners: Callable[[GalleryStore], dict[int, str]]             # vector id → identity id, no embeddings
    vectors: Callable[[GalleryStore], list[StoredReference]]


FACES = IndexKind("faces", FACE_DIM, GalleryStore.reference_owners, GalleryStore.references)
CHARACTERS = IndexKind("characters", EMBED_DIM, GalleryStore.character_reference_owners,
                       GalleryStore.character_references)


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


@contextmanager
def staged_copies(references_dir: Path, copies: dict[Path, str]) -> Iterator[Path]:
    """A fresh private folder under `references_dir` holding a copy of each file (source → stored
    name), for the caller to rename to the new identity's folder once its rows are in. The folder
    is removed on any failure inside the block, so no copy outlives a registration that failed."""
    references_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=references_dir))
    try:
        for source, name in copies.items():
            shutil.copyfile(source, folder / name)
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


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


def stored_name(path: Path, sha256: str) -> str:
    """A reference copy's file name in its identity's folder."""
    return f"{sha256}{path.suffix.lower()}"


def face_reference_fields(ref: AcceptedReference, stored_path: str) -> dict:
    """The reference_images row of one accepted face reference."""
    return dict(source_name=ref.path.name, sha256=ref.sha256, stored_path=stored_path,
                embedding=ref.embedding.astype(np.float32).tobytes(),
                face={"bbox": ref.bbox, "det_score": ref.det_score, "sharpness": ref.sharpness, "yaw": ref.yaw,
                      "pitch": ref.pitch})


def character_reference_fields(ref: CharacterReference, stored_path: str) -> dict:
    """The character_references row of one CLIP-embedded region."""
    return dict(source_name=ref.image.source.name, sha256=ref.sha256, stored_path=stored_path, region=ref.region,
                box=list(ref.box), t_s=ref.image.t_s, embedding=ref.embedding.astype(np.float32).tobytes())


@dataclass(frozen=True)
class _Loaded:
    """One gallery version as read, swapped in whole."""

    index: VectorIndex
    owners: dict[int, str]
    identities: dict[str, IdentityInfo]
    cast: dict[str, tuple[str, ...]]  # character → actors, actor → characters


class VectorGallery:
    """The searching side of a gallery over one index: refresh to the database's version, search,
    and apply a change (or rebuild) after a write. `Gallery` and `CharacterGallery` add the writes."""

    def __init__(self, home: Path, store: GalleryStore, kind: IndexKind, index_config: IndexConfig | None = None):
        self.home = Path(home)
        self.store = store
        self.kind = kind
        self._index_config = index_config or IndexConfig()
        self._index_dir = self.home / "index" / kind.folder
        self._references_dir = self.home / "references"
        self._loaded: _Loaded | None = None
        self.version = -1

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load the current gallery version if it changed; True when something was reloaded."""
        current = self.store.version()
        if current == self.version and self._loaded is not None:
            return False
        owners = self.kind.owners(self.store)
        index = load_snapshot(self._index_dir, self._index_config, current, set(owners))
        if index is None:
            index = self._build()
            with self._lock():
                save_snapshot(index, self._index_dir, current)
        self._use(index, current, owners)
        return True

    def _latest(self) -> _Loaded:
        """The database's current version, reloaded first if it changed."""
        self.refresh()
        assert self._loaded is not None  # refresh always leaves one loaded
        return self._loaded

    def __len__(self) -> int:
        return len(self._latest().index)

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]:
        loaded = self._latest()
        index, owners = loaded.index, loaded.owners
        if len(index) == 0:
            return [[] for _ in range(len(embeddings))]
        sims, ids = index.search(np.asarray(embeddings, dtype=np.float32), min(k, len(index)))
        return [[ReferenceHit(owners[int(i)], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(sims, ids)]

    def identity(self, identity_id: str) -> IdentityInfo:
        """From the version loaded last: the one the caller's search ran on."""
        loaded = self._loaded if self._loaded is not None else self._latest()
        return loaded.identities[identity_id]

    def identities(self, owner: str | None = None) -> list[tuple[IdentityInfo, int]]:
        return self.store.identities(owner)

    def cast(self, identity_id: str) -> tuple[IdentityInfo, ...]:
        """A character's actors, or the characters an actor plays."""
        loaded = self._latest()
        return tuple(loaded.identities[i] for i in loaded.cast.get(identity_id, ()) if i in loaded.identities)

    def _build(self) -> VectorIndex:
        vectors = self.kind.vectors(self.store)
        index = VectorIndex(self.kind.dimension, self._index_config)
        if vectors:
            index.add(np.array([v.id for v in vectors], dtype=np.int64), np.stack([v.embedding for v in vectors]))
        return index

    def _use(self, index: VectorIndex, version: int, owners: dict[int, str] | None = None) -> None:
        """Swap in one version whole: its index, who each vector belongs to, the identities, the cast."""
        cast: dict[str, list[str]] = {}
        for character, actor in self.store.cast_pairs():
            cast.setdefault(character, []).append(actor)
            cast.setdefault(actor, []).append(character)
        self._loaded = _Loaded(index, self.kind.owners(self.store) if owners is None else owners,
                               {info.id: info for info, _ in self.store.identities()},
                               {k: tuple(v) for k, v in cast.items()})
        self.version = version

    # -- changing ------------------------------------------------------------------------------

    def _lock(self):
        """One lock for both indexes: never held while calling a method that takes it."""
        return gallery_lock(self.home)

    def refresh_after_change(self, version: int, add=None, remove=None) -> None:
        """Apply one change (add: (ids, embeddings); remove: ids) to the loaded index when it is the
        version just before, else rebuild from the database; then save. The caller holds the lock."""
        if self._loaded is None or self.version != version - 1:
            index = self._build()
        else:
            index = self._loaded.index
            if add is not None:
                index.add(np.array(add[0], dtype=np.int64), np.stack(add[1]))
            if remove:
                index.remove(np.array(remove, dtype=np.int64))
        save_snapshot(index, self._index_dir, version)
        self._use(index, version)


class Gallery(VectorGallery):
    """Implements the pipeline's GallerySearcher over the face index; registers and removes identities."""

    def __init__(self, home: Path, store: GalleryStore, index_config: IndexConfig | None = None):
        super().__init__(home, store, FACES, index_config)

    def add(self, name: str, kind: str, owner: str, policy: str, authorized: list[str],
            enrollment: EnrollmentResult, match_threshold: float | None = None) -> IdentityInfo:
        """Register an identity from accepted references; copies of the photos stay private to it.
        `match_threshold` raises the match threshold for this identity alone (known look-alikes)."""
        if not enrollment.accepted:
            raise ValueError("no reference was accepted; nothing registered")
        copies = {ref.path: stored_name(ref.path, ref.sha256) for ref in enrollment.accepted}
        with self._lock():
            with staged_copies(self._references_dir, copies) as staged:
                info, ids, version = self.store.add_identity(
                    name, kind, owner, policy, authorized,
                    [face_reference_fields(ref, copies[ref.path]) for ref in enrollment.accepted], match_threshold)
            os.replace(staged, self._references_dir / info.id)
            self.refresh_after_change(version, add=(ids, [r.embedding for r in enrollment.accepted]))
            return info

    def add_references(self, identity_id: str, owner: str, enrollment: EnrollmentResult) -> list[int]:
        """Add accepted references to an existing person (a confirmed appearance the owner approved);
        the copies go to its private folder first, so a row never points at a missing copy. Returns
        the new reference ids (none for images it already had)."""
        if not enrollment.accepted:
            raise ValueError("no reference was accepted; nothing added")
        folder = self._references_dir / identity_id
        with self._lock():
            if not folder.is_dir():
                raise KeyError(f"no likeness with id {identity_id}")
            copies = {ref.path: stored_name(ref.path, ref.sha256) for ref in enrollment.accepted}
            written = []
            try:
                for source, name in copies.items():
                    if not (folder / name).exists():
                        shutil.copyfile(source, folder / f".{name}.tmp")
                        os.replace(folder / f".{name}.tmp", folder / name)
                        written.append(folder / name)
                added, version = self.store.add_references(
                    identity_id, owner, [face_reference_fields(ref, copies[ref.path]) for ref in enrollment.accepted])
            except BaseException:
                for path in written:  # no row points at them
                    path.unlink(missing_ok=True)
                raise
            new = [ref for ref in enrollment.accepted if ref.sha256 in added]
            self.refresh_after_change(version, add=([added[r.sha256] for r in new], [r.embedding for r in new])
                                      if new else None)
            return [added[r.sha256] for r in new]

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


class CharacterGallery(VectorGallery):
    """Implements the pipeline's CharacterSearcher over the character index; registers characters
    (their faces go to the face gallery) and removes any identity from both indexes."""

    def __init__(self, home: Path, store: GalleryStore, index_config: IndexConfig | None = None):
        super().__init__(home, store, CHARACTERS, index_config)

    def add(self, gallery: Gallery, name: str, owner: str, policy: str, authorized: list[str],
            faces: EnrollmentResult, images: CharacterEnrollment, played_by: Sequence[str] = ()) -> IdentityInfo:
        """Register a character in one transaction: its faces (for the face index), its CLIP
        references and its cast; copies of the reference images stay private to it."""
        if not images.references:
            raise ValueError("no reference image could be embedded; nothing registered")
        copies: dict[Path, str] = {}
        for path, sha256 in [(r.path, r.sha256) for r in faces.accepted] + \
                            [(r.image.path, r.sha256) for r in images.references]:
            copies.setdefault(path, stored_name(path, sha256))
        with self._lock():
            with staged_copies(self._references_dir, copies) as staged:
                info, face_ids, image_ids, version = self.store.add_character(
                    name, owner, policy, authorized,
                    [face_reference_fields(r, copies[r.path]) for r in faces.accepted],
                    [character_reference_fields(r, copies[r.image.path]) for r in images.references], played_by)
            os.replace(staged, self._references_dir / info.id)
            gallery.refresh_after_change(version, add=(face_ids, [r.embedding for r in faces.accepted])
                                         if face_ids else None)
            self.refresh_after_change(version, add=(image_ids, [r.embedding for r in images.references]))
        return info

    def remove(self, gallery: Gallery, identity_id: str, owner: str | None = None) -> IdentityInfo:
        """Delete any identity for good (a character's references and cast go with it) and drop its
        vectors from both indexes."""
        ids = self.store.character_reference_ids(identity_id)
        info = gallery.remove(identity_id, owner)
        with self._lock():
            self.refresh_after_change(gallery.version, remove=ids)
        return info
