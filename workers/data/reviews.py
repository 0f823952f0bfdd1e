"""Reviewers' decisions on findings: the audit trail (`finding_decisions`, append-only) and the
delivery state of each decision's `finding.decided` webhook (`decision_webhooks`).

ReviewStore is the only code that reads or writes these two tables. A decision is never changed
or deleted: deciding again appends a row, and the newest row of a finding is its decision. The
review queue is the one query that also reads the findings, scans and jobs tables (read only,
joined in the database): a platform's findings with action `review` and no decision yet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from workers.data.db import Database, DecisionRow, DecisionWebhookRow, FindingRow, JobRow, ScanRow, now

CONFIRMED, DISMISSED = "confirmed", "dismissed"
NOT_THIS_PERSON = "not_this_person"
# Each reason a reviewer can give, with the decision it belongs to and its words.
REASONS: dict[str, tuple[str, str]] = {
    "impersonation": (CONFIRMED, "It is this person: impersonation or deceptive use"),
    "unauthorised_use": (CONFIRMED, "It is this person: use the owner did not authorise"),
    "confirmed_other": (CONFIRMED, "It is this person: other (see comment)"),
    NOT_THIS_PERSON: (DISMISSED, "Not this person: a look-alike"),
    "authorised": (DISMISSED, "It is this person, and the use is allowed (licence, parody, news)"),
    "dismissed_other": (DISMISSED, "Dismissed: other (see comment)"),
}
MAX_COMMENT = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # a comment may have lines, not NUL and the like


class DecisionRefused(ValueError):
    """A decision that cannot be stored as given (unknown decision or reason, no comment)."""


@dataclass(frozen=True)
class Decision:
    id: int
    finding_id: int
    scan_id: str
    identity_id: str
    owner: str
    platform: str
    decision: str
    reason: str
    comment: str
    decided_by: str
    decided_at: datetime
    webhook_status: str | None = None
    webhook_attempts: int = 0
    webhook_error: str | None = None

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason, ("", self.reason))[1]


@dataclass(frozen=True)
class QueueItem:
    finding: FindingRow
    uploader: str | None


QUEUE_ORDERS = ("newest", "severity")


def check(decision: str, reason: str, comment: str) -> str:
    """The comment, stripped; DecisionRefused naming the field for anything else."""
    if decision not in (CONFIRMED, DISMISSED):
        raise DecisionRefused(f"decision: must be {CONFIRMED} or {DISMISSED}, not {decision!r}")
    if reason not in REASONS or REASONS[reason][0] != decision:
        allowed = ", ".join(r for r, (d, _) in REASONS.items() if d == decision)
        raise DecisionRefused(f"reason: for {decision} one of {allowed}, not {reason!r}")
    comment = comment.strip()
    if _CONTROL.search(comment):
        raise DecisionRefused("comment: must not contain control characters other than line breaks and tabs")
    if not comment:
        raise DecisionRefused("comment: required (why, in a sentence: it is the audit trail)")
    if len(comment) > MAX_COMMENT:
        raise DecisionRefused(f"comment: longer than {MAX_COMMENT} characters")
    return comment


def _decision(row: DecisionRow, hook: DecisionWebhookRow | None = None) -> Decision:
    return Decision(row.id, row.finding_id, row.scan_id, row.identity_id, row.owner, row.platform, row.decision,
                    row.reason, row.comment, row.decided_by, row.decided_at,
                    hook.status if hook else None, hook.attempts if hook else 0, hook.error if hook else None)


class ReviewStore:
    def __init__(self, db: Database):
        self.db = db

    def decide(self, finding: FindingRow, platform: str, decided_by: str, key_id: str, decision: str, reason: str,
               comment: str, callback_url: str | None) -> Decision:
        """Append a decision on `finding` (of `platform`'s scan); with a callback URL its webhook is
        pending in the same transaction, so the sweep sends it even if the first send is lost."""
        comment = check(decision, reason, comment)
        with self.db.transaction() as s:
            row = DecisionRow(finding_id=finding.id, scan_id=finding.scan_id, identity_id=finding.identity_id,
                              owner=finding.owner, platform=platform, decision=decision, reason=reason,
                              comment=comment, decided_by=decided_by, key_id=key_id, decided_at=now())
            s.add(row)
            s.flush()
            hook = None
            if callback_url:
                hook = DecisionWebhookRow(decision_id=row.id, url=callback_url, status="pending", attempts=0,
                                          updated_at=now())
                s.add(hook)
            return _decision(row, hook)

    def latest(self, finding_ids: list[int]) -> dict[int, Decision]:
        """The current decision (the newest) of each of these findings that has one."""
        if not finding_ids:
            return {}
        newest = (select(func.max(DecisionRow.id)).where(DecisionRow.finding_id.in_(finding_ids))
                  .group_by(DecisionRow.finding_id))
        with self.db.session() as s:
            rows = s.execute(select(DecisionRow, DecisionWebhookRow)
                             .outerjoin(DecisionWebhookRow, DecisionWebhookRow.decision_id == DecisionRow.id)
                             .where(DecisionRow.id.in_(newest))).all()
        return {row.finding_id: _decision(row, hook) for row, hook in rows}

    def confirmed_in(self, scan_ids: list[str]) -> list[Decision]:
        """The findings of these scans whose current decision (the newest) is `confirmed`: the confirmed
        violations an uploader's history counts (workers/data/uploaders.py)."""
        if not scan_ids:
            return []
        newest = (select(func.max(DecisionRow.id)).where(DecisionRow.scan_id.in_(scan_ids))
                  .group_by(DecisionRow.finding_id))
        with self.db.session() as s:
            rows = s.scalars(select(DecisionRow).where(DecisionRow.id.in_(newest),
                                                       DecisionRow.decision == CONFIRMED)
                             .order_by(DecisionRow.decided_at, DecisionRow.id)).all()
        return [_decision(row) for row in rows]

    def history(self, finding_id: int) -> list[Decision]:
        """Every decision on a finding, oldest first."""
        with self.db.session() as s:
            rows = s.execute(select(DecisionRow, DecisionWebhookRow)
                             .outerjoin(DecisionWebhookRow, DecisionWebhookRow.decision_id == DecisionRow.id)
                             .where(DecisionRow.finding_id == finding_id).order_by(DecisionRow.id)).all()
        return [_decision(row, hook) for row, hook in rows]

    def queue(self, platform: str, category: str | None = None, uploader: str | None = None,
              after: tuple[float, datetime, int] | None = None, limit: int = 50,
              order: str = "newest") -> tuple[list[QueueItem], int]:
        """`platform`'s findings waiting for review (action review, no decision), from right after `after`
        (the previous page's last confidence, created_at and id), and how many there are in all.
        `order` "newest": created_at, then id, descending; "severity": the finding's confidence first
        (the surest findings, whose action waits on a reviewer, come first), then newest."""
        if order not in QUEUE_ORDERS:
            raise ValueError(f"order must be one of {', '.join(QUEUE_ORDERS)}, not {order!r}")
        decided = select(DecisionRow.id).where(DecisionRow.finding_id == FindingRow.id).exists()
        query = (select(FindingRow, ScanRow.uploader).join(ScanRow, ScanRow.id == FindingRow.scan_id)
                 .join(JobRow, JobRow.id == FindingRow.scan_id)
                 .where(JobRow.principal == platform, JobRow.kind == "scan", FindingRow.action == "review", ~decided))
        if category is not None:
            query = query.where(FindingRow.category == category)
        if uploader is not None:
            query = query.where(ScanRow.uploader == uploader)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            if after is not None:
                rank, at, last = after
                older = (FindingRow.created_at < at) | ((FindingRow.created_at == at) & (FindingRow.id < last))
                if order == "severity":
                    older = (FindingRow.confidence < rank) | ((FindingRow.confidence == rank) & older)
                query = query.where(older)
            newest = (FindingRow.created_at.desc(), FindingRow.id.desc())
            sort = (FindingRow.confidence.desc(), *newest) if order == "severity" else newest
            rows = s.execute(query.order_by(*sort).limit(limit)).all()
        return [QueueItem(finding, who) for finding, who in rows], total

    def dismissed_lookalikes(self, owner: str, limit: int = 200) -> list[Decision]:
        """Findings on `owner`'s likenesses whose current decision is "not this person", newest first."""
        newest = select(func.max(DecisionRow.id)).where(DecisionRow.owner == owner).group_by(DecisionRow.finding_id)
        with self.db.session() as s:
            rows = s.scalars(select(DecisionRow)
                             .where(DecisionRow.id.in_(newest), DecisionRow.reason == NOT_THIS_PERSON)
                             .order_by(DecisionRow.id.desc()).limit(limit))
            return [_decision(row) for row in rows]

    # -- webhooks ------------------------------------------------------------------------------

    def pending_webhook(self, decision_id: int) -> tuple[Decision, str] | None:
        """The decision and its callback URL while its webhook is pending; None otherwise."""
        with self.db.session() as s:
            found = s.execute(select(DecisionRow, DecisionWebhookRow)
                              .join(DecisionWebhookRow, DecisionWebhookRow.decision_id == DecisionRow.id)
                              .where(DecisionRow.id == decision_id, DecisionWebhookRow.status == "pending")).first()
        return (_decision(found[0], found[1]), found[1].url) if found else None

    def webhook_result(self, decision_id: int, status: str, error: str | None) -> None:
        """Record one delivery attempt: the status stays `pending` until delivered or given up."""
        with self.db.transaction() as s:
            s.execute(update(DecisionWebhookRow).where(DecisionWebhookRow.decision_id == decision_id).values(
                status=status, attempts=DecisionWebhookRow.attempts + 1, error=error[:2000] if error else None,
                updated_at=now()))

    def stale_webhooks(self, older_than: timedelta, at: datetime | None = None) -> list[int]:
        """Decisions whose webhook is still pending and unchanged for `older_than`; touched, so the
        next sweep waits as long again."""
        cutoff = (at or now()) - older_than
        with self.db.transaction() as s:
            ids = list(s.scalars(select(DecisionWebhookRow.decision_id).where(
                DecisionWebhookRow.status == "pending", DecisionWebhookRow.updated_at < cutoff)))
            if ids:
                s.execute(update(DecisionWebhookRow).where(DecisionWebhookRow.decision_id.in_(ids))
                          .values(updated_at=now()))
            return ids
