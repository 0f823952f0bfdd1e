"""Registered characters: whole-image CLIP references in a second vector index beside the face index.

A character is an identity of kind "character" in the identities table. Where its references show
a usable face, those faces go to the face index like anyone's (a live-action role is found through
the actor's face); every reference is also embedded whole and as a few crops by the CLIP tower, kept
in `character_references` and searched through this index. `character_cast` links a character to
the registered actors who play it. Like the face index, this one is derived from the database,
saved as crash-safe snapshots under home/index/characters tagged with the gallery version, and
rebuilt whenever it does not match the database; one gallery version counts changes to both.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from gallery.enroll import MAX_REFERENCE_BYTES, EnrollmentResult, RejectedReference
from gallery.gallery import Gallery, face_reference_fields, gallery_lock, load_snapshot, save_snapshot
from gallery.index.vector_index import VectorIndex
from gallery.index.config import IndexConfig
from gallery.store import Base, GalleryStateRow, GalleryStore, IdentityRow, ReferenceRow, _now
from pipeline.characters import CharacterConfig, ImageEmbedder, choose_crops, cut
from pipeline.config import SamplingConfig
from pipeline.faces.detector import FaceDetector
from pipeline.image_embedder import EMBED_DIM
from pipeline.types import IdentityInfo, ReferenceHit
from pipeline.video import VideoInputError, probe, sample_frames

log = logging.getLogger(__name__)


class CharacterReferenceRow(Base):
    """One CLIP-embedded region of a character's reference image; its id is the vector id."""

    __tablename__ = "character_references"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    source_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(20))      # whole | face | salient
    box: Mapped[list] = mapped_column(JSON)              # x0, y0, x1, y1 in the reference image
    t_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # time in a reference clip
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CharacterCastRow(Base):
    """A character is played by an actor (both registered identities); gone with either."""

    __tablename__ = "character_cast"
    character_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)


TABLES = (CharacterReferenceRow.__table__, CharacterCastRow.__table__)


def ensure_tables(engine: Engine) -> None:
    """Create the character tables where a database predates them (the embedded CLI has no Alembic)."""
    Base.metadata.create_all(engine, tables=list(TABLES))


# -- references ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceImage:
    """A still to register: a file as given, or a frame taken from a reference clip (`source`)."""

    path: Path
    source: Path
    t_s: float | None = None

    @property
    def label(self) -> str:
        return str(self.source) if self.t_s is None else f"{self.source}@{self.t_s:.2f}s"


@dataclass(frozen=True)
class CharacterReference:
    image: ReferenceImage
    sha256: str
    region: str
    box: tuple[int, int, int, int]
    embedding: np.ndarray


@dataclass(frozen=True)
class CharacterEnrollment:
    references: list[CharacterReference]
    rejected: list[RejectedReference]


def reference_images(paths: Sequence[Path], frames_dir: Path, config: CharacterConfig,
                     sampling: SamplingConfig) -> tuple[list[ReferenceImage], list[RejectedReference]]:
    """Stills as they are; a clip becomes up to `max_reference_frames` frames, `reference_interval_s`
    apart, written as PNG under `frames_dir` so both embedders and the reference copies see stills."""
    images, rejected = [], []
    for path in map(Path, paths):
        if not path.is_file():
            rejected.append(RejectedReference(path, "no such file"))
        elif cv2.haveImageReader(str(path)):
            images.append(ReferenceImage(path, path))
        else:
            try:
                images += _clip_frames(path, frames_dir, config, sampling)
            except VideoInputError as exc:
                rejected.append(RejectedReference(path, f"neither an image nor a readable clip ({exc})"))
    return images, rejected


def _clip_frames(path: Path, frames_dir: Path, config: CharacterConfig,
                 sampling: SamplingConfig) -> list[ReferenceImage]:
    info = probe(path, sampling)
    every = sampling.model_copy(update={"interval_s": config.reference_interval_s, "scene_cuts": False})
    frames_dir.mkdir(parents=True, exist_ok=True)
    taken = []
    for frame in sample_frames(info, every):
        target = frames_dir / f"{path.stem}@{frame.t_s:08.3f}s.png"
        cv2.imwrite(str(target), frame.image)
        taken.append(ReferenceImage(target, path, frame.t_s))
        if len(taken) >= config.max_reference_frames:
            break
    return taken


class CharacterEnroller:
    """Reference stills → CLIP embeddings of the whole image, the character's face and the most
    salient region. `face` picks among several faces as for face enrollment; with several faces and
    no choice, no face crop is taken (it could be someone else's)."""

    def __init__(self, detector: FaceDetector, embedder: ImageEmbedder, config: CharacterConfig):
        self._detector = detector
        self._embedder = embedder
        self._config = config

    def enroll(self, images: Sequence[ReferenceImage], face: str | int | None = None) -> CharacterEnrollment:
        crops, pending, rejected = [], [], []
        for image in images:
            if image.path.stat().st_size > MAX_REFERENCE_BYTES:
                rejected.append(RejectedReference(image.path, "file too large"))
                continue
            pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if pixels is None:
                rejected.append(RejectedReference(image.path, "not a readable image"))
                continue
            sha256 = hashlib.sha256(image.path.read_bytes()).hexdigest()
            faces = _chosen_faces([d.bbox for d in self._detector.detect(pixels)], face)
            for crop in choose_crops(pixels, faces, self._config):
                crops.append((image, sha256, crop))
                pending.append(cut(pixels, crop.box))
        embeddings = self._embedder.embed(pending, self._config.batch_size)
        references = [CharacterReference(image, sha256, crop.region, crop.box, embedding)
                      for (image, sha256, crop), embedding in zip(crops, embeddings)]
        return CharacterEnrollment(references, rejected)


def _chosen_faces(boxes: list[np.ndarray], face: str | int | None) -> list[np.ndarray]:
    if face is None:
        return boxes if len(boxes) == 1 else []
    if face == "largest":
        return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:1]
    ordered = sorted(boxes, key=lambda b: b[0])
    return [ordered[int(face)]] if 0 <= int(face) < len(ordered) else []


# -- the gallery ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Loaded:
    index: VectorIndex
    owners: dict[int, str]
    identities: dict[str, IdentityInfo]
    cast: dict[str, tuple[str, ...]]


class CharacterGallery:
    """Implements the pipeline's CharacterSearcher over the character index."""

    def __init__(self, home: Path, store: GalleryStore, index_config: IndexConfig | None = None):
        self.home = Path(home)
        self.store = store
        self._index_config = index_config or IndexConfig()
        self._index_dir = self.home / "index" / "characters"
        self._references_dir = self.home / "references"
        self._loaded: _Loaded | None = None
        self.version = -1

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load the current gallery version if it changed; True when something was reloaded."""
        current = self.store.version()
        if current == self.version and self._loaded is not None:
            return False
        rows = self._rows()
        index = load_snapshot(self._index_dir, self._index_config, current, {r[0] for r in rows})
        if index is None:
            index = self._build(rows)
            with self._lock():
                save_snapshot(index, self._index_dir, current)
        self._loaded, self.version = self._with(index, rows), current
        return True

    def __len__(self) -> int:
        self.refresh()
        return len(self._loaded.index)

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]:
        self.refresh()
        index, owners = self._loaded.index, self._loaded.owners
        if len(index) == 0:
            return [[] for _ in range(len(embeddings))]
        sims, ids = index.search(np.asarray(embeddings, dtype=np.float32), min(k, len(index)))
        return [[ReferenceHit(owners[int(i)], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(sims, ids)]

    def identity(self, identity_id: str) -> IdentityInfo:
        return self._loaded.identities[identity_id]

    def cast(self, identity_id: str) -> tuple[IdentityInfo, ...]:
        self.refresh()
        loaded = self._loaded
        return tuple(loaded.identities[i] for i in loaded.cast.get(identity_id, ()) if i in loaded.identities)

    def _rows(self) -> list[tuple[int, str, np.ndarray]]:
        with self.store.session() as s:
            rows = s.execute(select(CharacterReferenceRow.id, CharacterReferenceRow.identity_id,
                                    CharacterReferenceRow.embedding))
            return [(rid, iid, np.frombuffer(emb, dtype=np.float32)) for rid, iid, emb in rows]

    def _with(self, index: VectorIndex, rows: list[tuple[int, str, np.ndarray]]) -> _Loaded:
        cast: dict[str, list[str]] = {}
        with self.store.session() as s:
            for character, actor in s.execute(select(CharacterCastRow.character_id, CharacterCastRow.actor_id)):
                cast.setdefault(character, []).append(actor)
                cast.setdefault(actor, []).append(character)
        identities = {info.id: info for info, _ in self.store.identities()}
        return _Loaded(index, {rid: iid for rid, iid, _ in rows}, identities,
                       {k: tuple(v) for k, v in cast.items()})

    def _build(self, rows: list[tuple[int, str, np.ndarray]]) -> VectorIndex:
        index = VectorIndex(EMBED_DIM, self._index_config)
        if rows:
            index.add(np.array([r[0] for r in rows], dtype=np.int64), np.stack([r[2] for r in rows]))
        return index

    def _lock(self):
        """The face gallery's lock: never held while calling a Gallery method that takes it."""
        return gallery_lock(self.home)

    # -- changing ------------------------------------------------------------------------------

    def add(self, gallery: Gallery, name: str, owner: str, policy: str, authorized: list[str],
            faces: EnrollmentResult, images: CharacterEnrollment, played_by: Sequence[str] = ()) -> IdentityInfo:
        """Register a character in one transaction: its faces (for the face index), its CLIP
        references and its cast; copies of the reference images stay private to it."""
        if not images.references:
            raise ValueError("no reference image could be embedded; nothing registered")
        with self._lock():
            self._references_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=self._references_dir))
            try:
                stored: dict[Path, str] = {}
                for path, sha256 in [(r.path, r.sha256) for r in faces.accepted] + \
                                    [(r.image.path, r.sha256) for r in images.references]:
                    if path not in stored:
                        stored[path] = f"{sha256}{path.suffix.lower()}"
                        shutil.copyfile(path, staged / stored[path])
                info, version, face_ids, image_ids = self._insert(name, owner, policy, authorized, faces, images,
                                                                  played_by, stored)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            os.replace(staged, self._references_dir / info.id)
            gallery.refresh_after_change(version, add=(face_ids, [r.embedding for r in faces.accepted])
                                         if face_ids else None)
            self._apply(version, add=(image_ids, [r.embedding for r in images.references]))
        return info

    def _insert(self, name: str, owner: str, policy: str, authorized: list[str], faces: EnrollmentResult,
                images: CharacterEnrollment, played_by: Sequence[str],
                stored: dict[Path, str]) -> tuple[IdentityInfo, int, list[int], list[int]]:
        with self.store.session() as s, s.begin():
            identity = IdentityRow(name=name, kind="character", owner=owner, policy=policy,
                                   authorized_uploaders=list(authorized))
            s.add(identity)
            s.flush()
            face_rows = [ReferenceRow(identity_id=identity.id, **face_reference_fields(r, stored[r.path]))
                         for r in faces.accepted]
            image_rows = [CharacterReferenceRow(
                identity_id=identity.id, source_name=r.image.source.name, sha256=r.sha256,
                stored_path=stored[r.image.path], region=r.region, box=list(r.box), t_s=r.image.t_s,
                embedding=r.embedding.astype(np.float32).tobytes()) for r in images.references]
            cast = [CharacterCastRow(character_id=identity.id, actor_id=actor) for actor in _actors(s, played_by)]
            s.add_all(face_rows + image_rows + cast)
            s.flush()
            return identity.info(), _bump(s), [r.id for r in face_rows], [r.id for r in image_rows]

    def remove(self, gallery: Gallery, identity_id: str, owner: str | None = None) -> IdentityInfo:
        """Delete any identity for good (a character's references and cast go with it) and drop its
        vectors from both indexes."""
        with self.store.session() as s:
            ids = list(s.scalars(select(CharacterReferenceRow.id).where(
                CharacterReferenceRow.identity_id == identity_id)))
        info = gallery.remove(identity_id, owner)
        with self._lock():
            self._apply(gallery.version, remove=ids)
        return info

    def _apply(self, version: int, add=None, remove=None) -> None:
        """Apply one change to the loaded index when it is current, else rebuild; then save."""
        rows = self._rows()
        if self._loaded is None or self.version != version - 1:
            index = self._build(rows)
        else:
            index = self._loaded.index
            if add is not None:
                index.add(np.array(add[0], dtype=np.int64), np.stack(add[1]))
            if remove:
                index.remove(np.array(remove, dtype=np.int64))
        save_snapshot(index, self._index_dir, version)
        self._loaded, self.version = self._with(index, rows), version


def _actors(s: Session, played_by: Sequence[str]) -> list[str]:
    """The actors' ids, each a registered person; ValueError naming the first that is not."""
    for actor in played_by:
        row = s.get(IdentityRow, actor)
        if row is None or row.kind != "person":
            raise ValueError(f"--played-by {actor}: no registered person with that id")
    return list(dict.fromkeys(played_by))


def _bump(s: Session) -> int:
    """The gallery version counts changes to both indexes (GalleryStateRow)."""
    row = s.get(GalleryStateRow, 1, with_for_update=True)
    if row is None:
        row = GalleryStateRow(id=1, version=0)
        s.add(row)
    row.version += 1
    return row.version
