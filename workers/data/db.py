"""The service's tables (jobs, segments, scans, findings, API keys, owners) on the gallery's `Base`.

One metadata for everything, so Alembic sees the whole schema. A scan's report is a `scans` row
keyed by its job id: that primary key is what makes a report exist once.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from gallery.store import Base, shared_engine

ROLES = ("admin", "platform", "rights_holder")


def now() -> datetime:
    return datetime.now(UTC)


class OwnerRow(Base):
    """A rights holder: the `owner` of identities, the principal of a rights_holder key."""

    __tablename__ = "owners"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ApiKeyRow(Base):
    """Only the SHA-256 of a key is kept; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    principal: Mapped[str] = mapped_column(String(200), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobRow(Base):
    """One unit of requested work (scan an upload, enroll references, remove an identity).

    `idempotency_key` is unique: submitting the same upload twice returns the first job.
    `attempts` counts starts, so a task that kills its worker every time ends as failed.
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    principal: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    gallery_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    webhook_status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # pending|delivered|failed
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SegmentRow(Base):
    """One time segment of a scan job; `payload` holds its tracks (with embeddings) once done."""

    __tablename__ = "scan_segments"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ScanRow(Base):
    """The one report of a scan job, under the job's id; `findings` index it by likeness."""

    __tablename__ = "scans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video: Mapped[str] = mapped_column(Text)
    uploader: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gallery_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    report: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class FindingRow(Base):
    """A finding of a stored scan, denormalised by owner so a rights holder reads only theirs."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("scan_id", "identity_id", name="uq_findings_scan_identity"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    identity_id: Mapped[str] = mapped_column(String(36), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    category: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    similarity: Mapped[float] = mapped_column(Float)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Database:
    """A session factory on this process's engine (`shared_engine`, the gallery's too), shared by the
    API, tasks and CLI handlers."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Database:
        return cls(shared_engine(url))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        return self._sessions()


class DecisionRow(Base):
    """A reviewer's decision on a finding: the audit trail, append-only (never updated or deleted; a
    later decision on the same finding supersedes the earlier one, which stays). It outlives the
    finding it is about, so ids are kept without foreign keys."""

    __tablename__ = "finding_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(Integer, index=True)
    scan_id: Mapped[str] = mapped_column(String(64), index=True)
    identity_id: Mapped[str] = mapped_column(String(36), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)     # the likeness's owner
    platform: Mapped[str] = mapped_column(String(200), index=True)  # the scan's platform
    decision: Mapped[str] = mapped_column(String(20))               # confirmed | dismissed
    reason: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(200))            # the key's principal
    key_id: Mapped[str] = mapped_column(String(32))                 # which key (or console session's key)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class DecisionWebhookRow(Base):
    """Delivery state of a decision's `finding.decided` callback (kept apart so the audit rows never change)."""

    __tablename__ = "decision_webhooks"
    decision_id: Mapped[int] = mapped_column(ForeignKey("finding_decisions.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)     # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)


class UploaderScanRow(Base):
    """One finished scan as its uploader's history counts it: ids and counts, no face (owner:
    workers.data.uploaders.UploaderStore). Deleted with its scan (the foreign key)."""

    __tablename__ = "uploader_scans"
    __table_args__ = (UniqueConstraint("scan_id", name="uq_uploader_scans_scan_id"),
                      Index("ix_uploader_scans_account", "platform", "uploader", "created_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(200))
    uploader: Mapped[str] = mapped_column(String(200))      # as the platform sent it (namespaced by `platform`)
    items: Mapped[int] = mapped_column(Integer)
    ai_declared: Mapped[bool] = mapped_column(Boolean)      # AI content its uploader declared
    ai_undeclared: Mapped[bool] = mapped_column(Boolean)    # AI content its uploader did not declare
    impersonation: Mapped[int] = mapped_column(Integer)     # findings acted on (action not allow), by category
    portrait_rights: Mapped[int] = mapped_column(Integer)
    reposts: Mapped[int] = mapped_column(Integer)           # pictures re-posting a confirmed violation
    verdict: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ContentHashRow(Base):
    """The perceptual hash of one picture of a scan (pipeline/near_duplicates.py; owner:
    workers.data.uploaders.UploaderStore). Deleted with its scan (the foreign key)."""

    __tablename__ = "content_hashes"
    __table_args__ = (UniqueConstraint("scan_id", "item", name="uq_content_hashes_scan_item"),
                      Index("ix_content_hashes_platform", "platform", "created_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    item: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(200))
    uploader: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64))          # PDQ of the whole picture, hex
    variants: Mapped[str] = mapped_column(Text)            # every variant's PDQ (Fingerprint.variants), comma-joined
    quality: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
