"""The gallery's tables (identities, face and character references, cast, gallery version) and the one
class that reads and writes them, in a relational database (SQLite default, PostgreSQL by URL).

The database is the source of truth for the gallery: the vector indexes are derived from the
embeddings stored here and can always be rebuilt from them. The schema is Alembic's
(workers/data/migrations): nothing here creates tables.
"""
from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, create_engine, event,
                        func, select)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from pipeline.types import IdentityInfo

KINDS = ("person", "character")
EDITABLE = ("policy", "authorized_uploaders", "match_threshold")  # what decisions read; never the references


def check_match_threshold(value: float | None) -> float | None:
    """A likeness's own threshold is a cosine similarity, bounded like the scan's (MatchConfig.threshold,
    -1 to 1); it can only raise the scan's threshold for this likeness, never lower it."""
    if value is not None and not -1.0 <= value <= 1.0:  # NaN fails the comparison too
        raise ValueError(f"match threshold must be a cosine similarity from -1 to 1, not {value}")
    return value


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive (they were stored as UTC), PostgreSQL aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class IdentityRow(Base):
    __tablename__ = "identities"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    policy: Mapped[str] = mapped_column(String(40))
    authorized_uploaders: Mapped[list] = mapped_column(JSON, default=list)
    match_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)  # stricter, for look-alikes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    references: Mapped[list[ReferenceRow]] = relationship(
        back_populates="identity", cascade="all, delete-orphan", passive_deletes=True)

    def info(self) -> IdentityInfo:
        return IdentityInfo(id=self.id, name=self.name, kind=self.kind, owner=self.owner, policy=self.policy,
                            authorized_uploaders=tuple(self.authorized_uploaders or ()),
                            match_threshold=self.match_threshold)


class ReferenceRow(Base):
    """One accepted reference image; its id is the vector id in the FAISS index."""

    __tablename__ = "reference_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    source_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    face: Mapped[dict] = mapped_column(JSON)  # bbox, det_score, quality facts
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    identity: Mapped[IdentityRow] = relationship(back_populates="references")


class GalleryStateRow(Base):
    """A single row whose version increases on every gallery change; workers compare it."""

    __tablename__ = "gallery_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


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


@dataclass(frozen=True)
class StoredReference:
    """One vector of an index (a face or a character reference): its id is the row's."""

    id: int
    identity_id: str
    embedding: np.ndarray


def make_engine(url: str) -> Engine:
    """A new engine; the caller disposes it (migrations). Everything else shares `shared_engine`."""
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3 is the driver installed, not psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # foreign keys for cascades; WAL for concurrent readers
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    return engine


_engines: dict[tuple[str, int], Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    """This process's engine for `url`, made on first use: one connection pool per database, shared by
    the gallery, the jobs and the keys. Keyed by process id too, so a forked pool process makes its own
    (pooled connections must never cross a fork)."""
    key = (url, os.getpid())
    with _engines_lock:
        if key not in _engines:
            _engines[key] = make_engine(url)
        return _engines[key]


def _bump(s: Session) -> int:
    """Raise the gallery version inside the caller's transaction; it counts changes to both indexes."""
    row = s.get(GalleryStateRow, 1, with_for_update=True)
    if row is None:
        row = GalleryStateRow(id=1, version=0)
        s.add(row)
    row.version += 1
    return row.version


def _actors(s: Session, played_by: Sequence[str]) -> list[str]:
    """The actors' ids, each a registered person; ValueError naming the first that is not."""
    for actor in played_by:
        row = s.get(IdentityRow, actor)
        if row is None or row.kind != "person":
            raise ValueError(f"--played-by {actor}: no registered person with that id")
    return list(dict.fromkeys(played_by))


def _vectors(rows) -> list[StoredReference]:
    return [StoredReference(rid, iid, np.frombuffer(emb, dtype=np.float32)) for rid, iid, emb in rows]


class GalleryStore:
    """All database access of the gallery tables, each method one short transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> GalleryStore:
        """On this process's engine; the database must already have the schema (migrate.upgrade)."""
        return cls(shared_engine(url))

    def session(self) -> Session:
        return self._sessions()

    def version(self) -> int:
        with self.session() as s:
            row = s.get(GalleryStateRow, 1)
            return row.version if row else 0

    # -- changes -------------------------------------------------------------------------------

    def add_identity(self, name: str, kind: str, owner: str, policy: str, authorized: list[str], references: list[dict],
                     match_threshold: float | None = None) -> tuple[IdentityInfo, list[int], int]:
        """Insert an identity with its references; returns (info, reference ids, new version)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        check_match_threshold(match_threshold)
        with self.session() as s, s.begin():
            identity = IdentityRow(name=name, kind=kind, owner=owner, policy=policy,
                                   authorized_uploaders=list(authorized), match_threshold=match_threshold)
            s.add(identity)
            s.flush()
            rows = [ReferenceRow(identity_id=identity.id, **ref) for ref in references]
            s.add_all(rows)
            s.flush()
            version = _bump(s)
            return identity.info(), [r.id for r in rows], version

    def add_character(self, name: str, owner: str, policy: str, authorized: list[str], faces: list[dict],
                      images: list[dict], played_by: Sequence[str]) -> tuple[IdentityInfo, list[int], list[int], int]:
        """Insert a character with its face references, its CLIP references and its cast in one
        transaction; returns (info, face reference ids, character reference ids, new version).
        ValueError, with nothing written, when an actor is not a registered person."""
        with self.session() as s, s.begin():
            identity = IdentityRow(name=name, kind="character", owner=owner, policy=policy,
                                   authorized_uploaders=list(authorized))
            s.add(identity)
            s.flush()
            face_rows = [ReferenceRow(identity_id=identity.id, **ref) for ref in faces]
            image_rows = [CharacterReferenceRow(identity_id=identity.id, **ref) for ref in images]
            cast = [CharacterCastRow(character_id=identity.id, actor_id=actor) for actor in _actors(s, played_by)]
            s.add_all([*face_rows, *image_rows, *cast])
            s.flush()
            return identity.info(), [r.id for r in face_rows], [r.id for r in image_rows], _bump(s)

    def add_references(self, identity_id: str, owner: str, references: list[dict]) -> tuple[dict[str, int], int]:
        """Add face references to an existing person, skipping images it already has (a repeated
        task adds nothing twice); returns (new reference id by image SHA-256, new version).
        KeyError when `owner` has no such person."""
        with self.session() as s, s.begin():
            identity = s.get(IdentityRow, identity_id)
            if identity is None or identity.owner != owner or identity.kind != "person":
                raise KeyError(f"no likeness with id {identity_id}")
            have = set(s.scalars(select(ReferenceRow.sha256).where(ReferenceRow.identity_id == identity_id)))
            rows = [ReferenceRow(identity_id=identity_id, **ref) for ref in references if ref["sha256"] not in have]
            s.add_all(rows)
            s.flush()
            return {r.sha256: r.id for r in rows}, _bump(s)

    def update_identity(self, identity_id: str, owner: str | None, changes: dict[str, Any]) -> tuple[IdentityInfo, int]:
        """Change what decisions read from an identity (`EDITABLE`); returns (info, new version). The
        version moves so that every worker reloads the identity before its next decision."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}; only {', '.join(EDITABLE)}")
        check_match_threshold(changes.get("match_threshold"))
        with self.session() as s, s.begin():
            identity = s.get(IdentityRow, identity_id)
            if identity is None or (owner is not None and identity.owner != owner):
                raise KeyError(f"no likeness with id {identity_id}")
            for name, value in changes.items():
                setattr(identity, name, list(value) if name == "authorized_uploaders" else value)
            return identity.info(), _bump(s)

    def remove_identity(self, identity_id: str, owner: str | None = None) -> tuple[list[int], list[str], int]:
        """Delete an identity and its references (character references and cast go by cascade);
        returns (face reference ids, stored paths, new version)."""
        with self.session() as s, s.begin():
            identity = s.get(IdentityRow, identity_id)
            if identity is None or (owner is not None and identity.owner != owner):
                raise KeyError(f"no likeness with id {identity_id}")
            ids = [r.id for r in identity.references]
            paths = [r.stored_path for r in identity.references]
            s.delete(identity)
            return ids, paths, _bump(s)

    # -- identities ----------------------------------------------------------------------------

    def identities(self, owner: str | None = None) -> list[tuple[IdentityInfo, int]]:
        """(identity, number of references), optionally only one owner's."""
        with self.session() as s:
            query = select(IdentityRow).order_by(IdentityRow.created_at)
            if owner is not None:
                query = query.where(IdentityRow.owner == owner)
            return [(row.info(), len(row.references)) for row in s.scalars(query)]

    def identity(self, identity_id: str) -> IdentityInfo | None:
        with self.session() as s:
            row = s.get(IdentityRow, identity_id)
            return row.info() if row else None

    def registered_since(self, owner: str, name: str, sha256s: set[str], since: datetime) -> str | None:
        """The identity of `owner` named `name`, created at or after `since`, with exactly these
        reference images (face and character references alike): what an earlier run of the same
        enrollment job registered."""
        with self.session() as s:
            for identity in s.scalars(select(IdentityRow).where(IdentityRow.owner == owner, IdentityRow.name == name)):
                if utc(identity.created_at) < utc(since):
                    continue
                stored = set(s.scalars(select(ReferenceRow.sha256).where(ReferenceRow.identity_id == identity.id)))
                stored |= set(s.scalars(select(CharacterReferenceRow.sha256).where(
                    CharacterReferenceRow.identity_id == identity.id)))
                if stored == sha256s:
                    return identity.id
        return None

    # -- face references -----------------------------------------------------------------------

    def reference_count(self, identity_id: str) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(ReferenceRow).where(ReferenceRow.identity_id == identity_id)
            return s.scalar(query) or 0

    def reference_owners(self) -> dict[int, str]:
        """Reference id → identity id, without loading embeddings."""
        with self.session() as s:
            return dict(s.execute(select(ReferenceRow.id, ReferenceRow.identity_id)).all())

    def references(self) -> list[StoredReference]:
        with self.session() as s:
            return _vectors(s.execute(select(ReferenceRow.id, ReferenceRow.identity_id, ReferenceRow.embedding)))

    # -- character references and cast ---------------------------------------------------------

    def character_reference_owners(self) -> dict[int, str]:
        """Character reference id → identity id, without loading embeddings."""
        with self.session() as s:
            return dict(s.execute(select(CharacterReferenceRow.id, CharacterReferenceRow.identity_id)).all())

    def character_references(self) -> list[StoredReference]:
        with self.session() as s:
            return _vectors(s.execute(select(CharacterReferenceRow.id, CharacterReferenceRow.identity_id,
                                             CharacterReferenceRow.embedding)))

    def character_reference_ids(self, identity_id: str) -> list[int]:
        with self.session() as s:
            return list(s.scalars(select(CharacterReferenceRow.id).where(
                CharacterReferenceRow.identity_id == identity_id)))

    def cast_pairs(self) -> list[tuple[str, str]]:
        """Every (character id, actor id)."""
        with self.session() as s:
            return [(c, a) for c, a in s.execute(select(CharacterCastRow.character_id, CharacterCastRow.actor_id))]

    def characters_played_by(self, actor_id: str, owner: str) -> list[str]:
        """The characters whose cast lists `actor_id`, a person of `owner` (read it before the person is
        removed: the cast rows go with them)."""
        with self.session() as s:
            return list(s.scalars(select(CharacterCastRow.character_id)
                                  .join(IdentityRow, IdentityRow.id == CharacterCastRow.actor_id)
                                  .where(CharacterCastRow.actor_id == actor_id, IdentityRow.owner == owner)))

    def cast_names(self, character_id: str) -> set[str]:
        """The names of the actors who play a character now."""
        with self.session() as s:
            return set(s.scalars(select(IdentityRow.name)
                                 .join(CharacterCastRow, CharacterCastRow.actor_id == IdentityRow.id)
                                 .where(CharacterCastRow.character_id == character_id)))
