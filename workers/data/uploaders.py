"""An uploader's history and the perceptual hashes of posted pictures: UploaderStore is the only code
that reads or writes `uploader_scans` and `content_hashes`.

Both hold ids, counts and hashes, never a face or an embedding, and go with their scan: the rows
reference `scans.id` with ON DELETE CASCADE, so a scan deleted by the platform or by retention takes
its history row and its hashes with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pipeline.near_duplicates import Fingerprint
from workers.data.db import ContentHashRow, Database, UploaderScanRow, now

MAX_HASHES = 100_000  # a platform's most recent hashes compared with a new post (exhaustive search)


@dataclass(frozen=True)
class ScanCounts:
    """What one finished scan adds to its uploader's history."""

    items: int
    ai_declared: bool
    ai_undeclared: bool
    impersonation: int
    portrait_rights: int
    reposts: int        # pictures that re-post content a reviewer confirmed as a violation (caught unreviewed)
    verdict: str


@dataclass(frozen=True)
class HistoryRow:
    scan_id: str
    counts: ScanCounts
    created_at: datetime


@dataclass(frozen=True)
class KnownPicture:
    scan_id: str
    item: int
    uploader: str
    fingerprint: Fingerprint


class UploaderStore:
    def __init__(self, db: Database):
        self.db = db

    def record(self, scan_id: str, platform: str, uploader: str, counts: ScanCounts,
               pictures: list[tuple[int, Fingerprint]]) -> bool:
        """Add a finished scan to its uploader's history with its pictures' hashes, once (a second call
        for the same scan stores nothing and returns False)."""
        try:
            with self.db.transaction() as s:
                if s.scalar(select(UploaderScanRow.id).where(UploaderScanRow.scan_id == scan_id)) is not None:
                    return False
                at = now()
                s.add(UploaderScanRow(scan_id=scan_id, platform=platform, uploader=uploader, items=counts.items,
                                      ai_declared=counts.ai_declared, ai_undeclared=counts.ai_undeclared,
                                      impersonation=counts.impersonation, portrait_rights=counts.portrait_rights,
                                      reposts=counts.reposts, verdict=counts.verdict, created_at=at))
                s.add_all(ContentHashRow(scan_id=scan_id, item=item, platform=platform, uploader=uploader,
                                         hash=f.variants[0], variants=",".join(f.variants), quality=f.quality,
                                         created_at=at)
                          for item, f in pictures)
            return True
        except IntegrityError:  # the scan was deleted meanwhile, or recorded by a concurrent call
            return False

    def history(self, platform: str, uploader: str, since: datetime | None = None) -> list[HistoryRow]:
        """The uploader's scans still kept, oldest first."""
        query = select(UploaderScanRow).where(UploaderScanRow.platform == platform,
                                              UploaderScanRow.uploader == uploader)
        if since is not None:
            query = query.where(UploaderScanRow.created_at >= since)
        with self.db.session() as s:
            rows = s.scalars(query.order_by(UploaderScanRow.created_at, UploaderScanRow.id)).all()
        return [HistoryRow(r.scan_id, ScanCounts(r.items, r.ai_declared, r.ai_undeclared, r.impersonation,
                                                 r.portrait_rights, r.reposts, r.verdict), _utc(r.created_at))
                for r in rows]

    def pictures(self, platform: str, uploader: str | None = None, exclude_scan: str | None = None,
                 limit: int = MAX_HASHES) -> list[KnownPicture]:
        """The platform's most recent picture hashes (one uploader's with `uploader`)."""
        query = select(ContentHashRow).where(ContentHashRow.platform == platform)
        if uploader is not None:
            query = query.where(ContentHashRow.uploader == uploader)
        if exclude_scan is not None:
            query = query.where(ContentHashRow.scan_id != exclude_scan)
        with self.db.session() as s:
            rows = s.scalars(query.order_by(ContentHashRow.created_at.desc(), ContentHashRow.id.desc())
                             .limit(limit)).all()
        return [KnownPicture(r.scan_id, r.item, r.uploader, Fingerprint(tuple(r.variants.split(",")), r.quality))
                for r in rows]


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
