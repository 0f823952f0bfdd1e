"""Job state in the database: every transition is one short transaction, safe to repeat.

The database decides what has happened, never the broker: a task delivered twice finds its
work already recorded and does nothing, and counters are raised by UPDATE statements so two
workers racing on one row cannot lose a count.
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from workers.data.db import Database, FindingRow, JobRow, ScanRow, SegmentRow, now
from workers.scans.evidence import unavailable
from workers.scans.segments import Segment
from workers.scans.server_paths import uploads_named

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed")
DELETED = "deleted"  # a scan deleted for good: the row stays as a tombstone, without its data


class JobFailed(Exception):
    """Input that can never succeed: the job is marked failed with this reason, not retried."""


@dataclass(frozen=True)
class StaleJob:
    id: str
    kind: str
    status: str
    webhook_status: str | None


_DATABASE = re.compile(r"\[SQL: |\(psycopg|\(sqlite3\.|sqlalche\.me|\b(?:DataError|IntegrityError|ProgrammingError|"
                       r"OperationalError|InternalError|DatabaseError|InterfaceError)\b")
_TASK = re.compile(r"^[a-z_]+: ")  # the failed task's name, as the worker prefixes it
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"(),;\[\]{}]+/)+([^\s/'\"(),;\[\]{}]*)")


def client_error(reason: str) -> str:
    """A job's error as clients see it: a database error becomes one sentence (its SQL, parameters
    and driver message stay in the server log), and absolute server paths become their file names."""
    if _DATABASE.search(reason):
        task = _TASK.match(reason)
        return f"{task.group(0) if task else ''}database error (the details are in the server log)"
    return _ABSOLUTE.sub(lambda m: m.group(1) or "<path>", reason)


def new_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    def __init__(self, db: Database):
        self.db = db

    # -- creation and reading ------------------------------------------------------------------

    def create(self, kind: str, principal: str, params: dict[str, Any], idempotency_key: str | None = None,
               job_id: str | None = None) -> tuple[JobRow, bool]:
        """Insert a queued job; with a key already used, return that job instead (created False).
        A failed job gives its key up to the new one (it stays, without a key): a failed scan can be
        submitted again under the same key."""
        job_id = job_id or new_id()
        for _ in range(3):
            row = JobRow(id=job_id, kind=kind, status="queued", principal=principal, params=params,
                         idempotency_key=idempotency_key, attempts=0, webhook_attempts=0)
            try:
                with self.db.transaction() as s:
                    s.add(row)
                return row, True
            except IntegrityError:
                if idempotency_key is None:
                    raise
                existing = self.by_key(idempotency_key)
                if existing is None:
                    continue  # released a moment ago
                if existing.status != "failed":
                    return existing, False
                with self.db.transaction() as s:
                    s.execute(update(JobRow).where(JobRow.id == existing.id, JobRow.status == "failed")
                              .values(idempotency_key=None, updated_at=now()))
        raise RuntimeError(f"could not store job {job_id} under idempotency key {idempotency_key!r}")

    def get(self, job_id: str) -> JobRow | None:
        with self.db.session() as s:
            return s.get(JobRow, job_id)

    def by_key(self, idempotency_key: str) -> JobRow | None:
        with self.db.session() as s:
            return s.scalars(select(JobRow).where(JobRow.idempotency_key == idempotency_key)).first()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, job_id: str) -> JobRow | None:
        """Count one more start of an active job; None when it is finished (or unknown)."""
        with self.db.transaction() as s:
            changed = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(ACTIVE))
                                .values(attempts=JobRow.attempts + 1, status="running", updated_at=now()))
            return s.get(JobRow, job_id) if changed.rowcount else None

    def touch(self, job_id: str) -> None:
        with self.db.transaction() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(updated_at=now()))

    def fail(self, job_id: str, reason: str) -> bool:
        """Mark an active job failed; False when it had already finished. The stored error is the
        client's (`client_error`); the full reason goes to the log. A scan with a callback URL gets
        its webhook (`scan.failed`) pending, in the same transaction."""
        with self.db.transaction() as s:
            job = s.get(JobRow, job_id)
            # the upload as the platform named it, not as it is stored; then no server path at all
            shown = client_error(uploads_named(reason, job.params or {}) if job is not None else reason)
            if shown != reason:
                log.warning("job %s failed: %s", job_id, reason)
            values: dict[str, Any] = {"status": "failed", "error": shown[:2000], "updated_at": now(),
                                      "finished_at": now()}
            if job is not None and job.kind == "scan" and (job.params or {}).get("callback_url"):
                values["webhook_status"] = "pending"  # scan.failed goes to the callback URL
            changed = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(ACTIVE)).values(**values))
            return bool(changed.rowcount)

    def finish(self, job_id: str, result: dict, gallery_version: int | None = None) -> bool:
        with self.db.transaction() as s:
            changed = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(ACTIVE))
                                .values(status="done", result=result, gallery_version=gallery_version,
                                        updated_at=now(), finished_at=now()))
            return bool(changed.rowcount)

    # -- segments ------------------------------------------------------------------------------

    def plan(self, job_id: str, duration_s: float, segments: list[Segment]) -> list[int]:
        """Record the segments once (a repeated or concurrent plan keeps the first); returns those not done."""
        try:
            with self.db.transaction() as s:
                s.execute(update(JobRow).where(JobRow.id == job_id).values(duration_s=duration_s, updated_at=now()))
                if s.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.job_id == job_id)) == 0:
                    s.add_all(SegmentRow(job_id=job_id, number=seg.number, start_s=seg.start_s, end_s=seg.end_s,
                                         status="pending", attempts=0) for seg in segments)
        except IntegrityError:
            pass  # another delivery of the same task planned it a moment ago
        return self.pending_segments(job_id) or []

    def pending_segments(self, job_id: str) -> list[int] | None:
        """Numbers of the segments not done yet; None when the job was never planned."""
        with self.db.session() as s:
            rows = s.execute(select(SegmentRow.number, SegmentRow.status).where(SegmentRow.job_id == job_id))
            status = dict(rows.all())
        if not status:
            return None
        return sorted(n for n, state in status.items() if state != "done")

    def start_segment(self, job_id: str, number: int) -> SegmentRow | None:
        """Count one more start of a pending segment of an active job; None when there is nothing to do."""
        with self.db.transaction() as s:
            job = s.get(JobRow, job_id)
            if job is None or job.status not in ACTIVE:
                return None
            changed = s.execute(update(SegmentRow)
                                .where(SegmentRow.job_id == job_id, SegmentRow.number == number,
                                       SegmentRow.status == "pending")
                                .values(attempts=SegmentRow.attempts + 1, updated_at=now()))
            s.execute(update(JobRow).where(JobRow.id == job_id).values(updated_at=now()))
            return s.get(SegmentRow, (job_id, number)) if changed.rowcount else None

    def finish_segment(self, job_id: str, number: int, payload: dict) -> bool:
        """Store a segment's result (the first one stored wins); True when every segment is done."""
        with self.db.transaction() as s:
            s.execute(update(SegmentRow)
                      .where(SegmentRow.job_id == job_id, SegmentRow.number == number, SegmentRow.status == "pending")
                      .values(status="done", payload=payload, updated_at=now()))
            s.execute(update(JobRow).where(JobRow.id == job_id).values(updated_at=now()))
            pending = s.scalar(select(func.count()).select_from(SegmentRow)
                               .where(SegmentRow.job_id == job_id, SegmentRow.status != "done"))
            return pending == 0

    def segment_payloads(self, job_id: str) -> list[dict] | None:
        """Every segment's payload in order, or None while one is still pending."""
        with self.db.session() as s:
            rows = list(s.scalars(select(SegmentRow).where(SegmentRow.job_id == job_id).order_by(SegmentRow.number)))
        if not rows or any(row.status != "done" for row in rows):
            return None
        return [row.payload for row in rows]

    # -- results -------------------------------------------------------------------------------

    def complete_scan(self, job: JobRow, report: dict, findings: list[dict], webhook: bool) -> bool:
        """Store the one report of a scan job with its findings and mark the job done, atomically.

        The report's primary key is the job id: a second merge of the same job stores nothing and
        returns False.
        """
        verdict = report["verdict"]["action"]
        try:
            with self.db.transaction() as s:
                current = s.get(JobRow, job.id, with_for_update=True)  # waits for a deletion in flight
                if current is None or current.status == DELETED or s.get(ScanRow, job.id) is not None:
                    return False
                s.add(ScanRow(id=job.id, video=job.params["video"], uploader=job.params.get("uploader"),
                              gallery_version=report["gallery_version"], action=verdict, report=report))
                s.flush()
                s.add_all(FindingRow(scan_id=job.id, identity_id=f["identity"]["id"], owner=f["identity"]["owner"],
                                     category=f["category"], action=f["action"], confidence=f["confidence"],
                                     similarity=f["similarity"], start_s=f["start_s"], end_s=f["end_s"], data=f)
                          for f in findings)
                s.execute(update(JobRow).where(JobRow.id == job.id).values(
                    status="done", result={"verdict": verdict, "findings": len(findings)},
                    gallery_version=report["gallery_version"], webhook_status="pending" if webhook else None,
                    error=None, updated_at=now(), finished_at=now()))
            return True
        except IntegrityError:
            return False

    def scans_of(self, principal: str, status: str | None = None, verdict: str | None = None,
                 since: datetime | None = None, after: tuple[datetime, str] | None = None,
                 limit: int = 50) -> tuple[list[tuple[JobRow, str | None]], int]:
        """A platform's scans with their verdict action (None unless done), newest first (created_at,
        then id, both descending); `after` is the (created_at, id) of the last scan of the page before:
        the page goes on strictly after it, whatever was submitted since. Also the number of scans the
        filter matches, over every page."""
        query = (select(JobRow, ScanRow.action).outerjoin(ScanRow, ScanRow.id == JobRow.id)
                 .where(JobRow.kind == "scan", JobRow.principal == principal))
        if status is not None:
            query = query.where(JobRow.status == status)
        if verdict is not None:
            query = query.where(ScanRow.action == verdict)
        if since is not None:
            query = query.where(JobRow.created_at >= since)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            if after is not None:
                at, last = after
                query = query.where((JobRow.created_at < at) | ((JobRow.created_at == at) & (JobRow.id < last)))
            rows = s.execute(query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)).all()
            return [(job, action) for job, action in rows], total

    def jobs_of(self, principal: str, kind: str, limit: int = 200) -> list[JobRow]:
        """A principal's jobs of one kind, newest first (a rights holder's registrations, in the console)."""
        with self.db.session() as s:
            return list(s.scalars(select(JobRow).where(JobRow.principal == principal, JobRow.kind == kind)
                                  .order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)))

    def report(self, job_id: str) -> dict | None:
        with self.db.session() as s:
            row = s.get(ScanRow, job_id)
            return row.report if row else None

    def findings_of(self, owner: str, identity_id: str | None = None, limit: int = 100, offset: int = 0,
                    since: datetime | None = None,
                    after: tuple[datetime, int] | None = None) -> tuple[list[FindingRow], int]:
        """An owner's findings, newest first (created_at, then id, both descending), from right after
        `after` (the page before's last (created_at, id)); and how many the filter matches in all."""
        with self.db.session() as s:
            query = select(FindingRow).where(FindingRow.owner == owner)
            if identity_id is not None:
                query = query.where(FindingRow.identity_id == identity_id)
            if since is not None:
                query = query.where(FindingRow.created_at >= since)
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            if after is not None:
                at, last = after
                query = query.where((FindingRow.created_at < at) |
                                    ((FindingRow.created_at == at) & (FindingRow.id < last)))
            query = query.order_by(FindingRow.created_at.desc(), FindingRow.id.desc()).limit(limit).offset(offset)
            return list(s.scalars(query)), total

    def finding(self, scan_id: str, identity_id: str) -> FindingRow | None:
        with self.db.session() as s:
            return s.scalars(select(FindingRow).where(FindingRow.scan_id == scan_id,
                                                      FindingRow.identity_id == identity_id)).first()

    def findings_of_scan(self, scan_id: str) -> list[FindingRow]:
        """A scan's findings, in the order they were stored (the report's)."""
        with self.db.session() as s:
            return list(s.scalars(select(FindingRow).where(FindingRow.scan_id == scan_id).order_by(FindingRow.id)))

    def finding_by_id(self, finding_id: int) -> tuple[FindingRow, JobRow] | None:
        """A finding with its scan's job (whose principal is the platform that submitted it)."""
        with self.db.session() as s:
            found = s.execute(select(FindingRow, JobRow).join(JobRow, JobRow.id == FindingRow.scan_id)
                              .where(FindingRow.id == finding_id)).first()
            return (found[0], found[1]) if found else None

    def withdraw_images(self, identity_id: str, reason: str) -> list[str]:
        """Drop the image references of every finding about `identity_id`, in the findings and
        in their scans' reports; returns those scans' ids (whose image folders go next)."""
        with self.db.transaction() as s:
            rows = list(s.scalars(select(FindingRow).where(FindingRow.identity_id == identity_id)))
            for row in rows:
                row.data = unavailable(row.data, reason)
                scan = s.get(ScanRow, row.scan_id)
                if scan is not None:
                    findings = [unavailable(f, reason) if f["identity"]["id"] == identity_id else f
                                for f in scan.report["findings"]]
                    scan.report = {**scan.report, "findings": findings}
            return [row.scan_id for row in rows]

    # -- deletion ------------------------------------------------------------------------------

    def delete_scan(self, job_id: str) -> bool:
        """Drop a finished scan's report, findings and segments (their payloads hold every face's
        embedding) and strip its job row to a tombstone, in one transaction. The idempotency key goes
        too, so the same upload can be scanned again. True when the scan is deleted (now or before),
        False while it is queued or running or when there is no such scan."""
        with self.db.transaction() as s:
            changed = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.kind == "scan",
                                                     JobRow.status.in_(FINISHED))
                                .values(status=DELETED, params={}, result=None, error=None, idempotency_key=None,
                                        webhook_status=None, webhook_error=None, updated_at=now()))
            if not changed.rowcount:
                job = s.get(JobRow, job_id)
                return job is not None and job.kind == "scan" and job.status == DELETED
            s.execute(delete(FindingRow).where(FindingRow.scan_id == job_id))
            s.execute(delete(ScanRow).where(ScanRow.id == job_id))
            s.execute(delete(SegmentRow).where(SegmentRow.job_id == job_id))
            return True

    def expired_scans(self, older_than: timedelta, limit: int, at: datetime | None = None) -> list[str]:
        """Ids of scans that finished (done or failed) more than `older_than` ago, oldest first."""
        cutoff = (at or now()) - older_than
        with self.db.session() as s:
            return list(s.scalars(select(JobRow.id).where(JobRow.kind == "scan", JobRow.status.in_(FINISHED),
                                                          JobRow.finished_at < cutoff)
                                  .order_by(JobRow.finished_at).limit(limit)))

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_result(self, job_id: str, status: str, error: str | None) -> None:
        """Record one delivery attempt: status stays `pending` until delivered or given up."""
        with self.db.transaction() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status != DELETED).values(
                webhook_status=status, webhook_attempts=JobRow.webhook_attempts + 1,
                webhook_error=client_error(error)[:2000] if error else None, updated_at=now()))

    # -- recovery ------------------------------------------------------------------------------

    def stale(self, older_than: timedelta, at: datetime | None = None) -> list[StaleJob]:
        """Active jobs, and done jobs with a webhook still pending, unchanged for `older_than`."""
        cutoff = (at or now()) - older_than
        with self.db.session() as s:
            rows = s.execute(select(JobRow.id, JobRow.kind, JobRow.status, JobRow.webhook_status)
                             .where(JobRow.updated_at < cutoff)
                             .where(JobRow.status.in_(ACTIVE) | (JobRow.webhook_status == "pending")))
            return [StaleJob(*row) for row in rows]
