"""Identities, references and scans in a relational database (SQLite default, PostgreSQL by URL).

The database is the source of truth for the gallery: the FAISS index is derived from the
embeddings stored here and can always be rebuilt from them.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
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
    return datetime.now(timezone.utc)


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
    references: Mapped[list["ReferenceRow"]] = relationship(
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


class ScanRow(Base):
    __tablename__ = "scans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video: Mapped[str] = mapped_column(Text)
    uploader: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gallery_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    report: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass(frozen=True)
class StoredReference:
    id: int
    identity_id: str
    embedding: np.ndarray


def make_engine(url: str) -> Engine:
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


class GalleryStore:
    """All database access of the gallery, each method one short transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> "GalleryStore":
        store = cls(make_engine(url))
        Base.metadata.create_all(store.engine)
        return store

    def session(self) -> Session:
        return self._sessions()

    def version(self) -> int:
        with self.session() as s:
            row = s.get(GalleryStateRow, 1)
            return row.version if row else 0

    def _bump(self, s: Session) -> int:
        row = s.get(GalleryStateRow, 1, with_for_update=True)
        if row is None:
            row = GalleryStateRow(id=1, version=0)
            s.add(row)
        row.version += 1
        return row.version

    def add_identity(self, name: str, kind: str, owner: str, policy: str, authorized: list[str],
                     references: list[dict], match_threshold: float | None = None) -> tuple[IdentityInfo, list[int], int]:
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
            version = self._bump(s)
            return identity.info(), [r.id for r in rows], version

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
            return identity.info(), self._bump(s)

    def remove_identity(self, identity_id: str, owner: str | None = None) -> tuple[list[int], list[str], int]:
        """Delete an identity and its references; returns (reference ids, stored paths, new version)."""
        with self.session() as s, s.begin():
            identity = s.get(IdentityRow, identity_id)
            if identity is None or (owner is not None and identity.owner != owner):
                raise KeyError(f"no likeness with id {identity_id}")
            ids = [r.id for r in identity.references]
            paths = [r.stored_path for r in identity.references]
            s.delete(identity)
            return ids, paths, self._bump(s)

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

    def reference_count(self, identity_id: str) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(ReferenceRow).where(ReferenceRow.identity_id == identity_id)
            return s.scalar(query)

    def reference_owners(self) -> dict[int, str]:
        """Reference id → identity id, without loading embeddings."""
        with self.session() as s:
            return dict(s.execute(select(ReferenceRow.id, ReferenceRow.identity_id)).all())

    def references(self) -> list[StoredReference]:
        with self.session() as s:
            rows = s.execute(select(ReferenceRow.id, ReferenceRow.identity_id, ReferenceRow.embedding))
            return [StoredReference(rid, iid, np.frombuffer(emb, dtype=np.float32)) for rid, iid, emb in rows]

    def save_scan(self, scan_id: str, video: Path, uploader: str | None, gallery_version: int, action: str,
                  report: dict) -> None:
        with self.session() as s, s.begin():
            s.merge(ScanRow(id=scan_id, video=str(video), uploader=uploader, gallery_version=gallery_version,
                            action=action, report=report))
