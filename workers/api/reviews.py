"""Review decisions: a platform's queue of findings waiting for review, one finding with its
decision history, and the decision itself (confirm or dismiss, with a reason and a comment), which
is stored in the audit trail and sent to the scan's callback URL as `finding.decided`.

A finding is visible to the platform whose scan it is and to the owner of the likeness; anyone
else gets 404, so its existence is not revealed. Only the platform decides.
"""
from __future__ import annotations

import logging
import shutil
from datetime import datetime
from typing import Literal

from celery import Celery
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from workers import dispatch
from workers.api import fields, pages
from workers.api.deps import require, sender, service
from workers.api.jobs import job_out, own_job, publish
from workers.api.schemas import (DecisionIn, DecisionOut, FindingOut, JobOut, ReferenceIn, ReviewItem, ReviewPage,
                                 Webhook)
from workers.data.db import FindingRow, JobRow
from workers.data.jobs import client_error, new_id
from workers.data.keys import Principal
from workers.data.reviews import CONFIRMED, Decision, DecisionRefused
from workers.scans.evidence import image_path
from workers.service import Service

log = logging.getLogger(__name__)
router = APIRouter(tags=["findings"])
platform = require("platform")
FindingId = Path(description="The finding's id (`id` in GET /v1/findings and /v1/reviews).", ge=1, lt=2**31)


def decision_out(decision: Decision) -> DecisionOut:
    webhook = None
    if decision.webhook_status:
        webhook = Webhook(status=decision.webhook_status, attempts=decision.webhook_attempts,
                          error=client_error(decision.webhook_error) if decision.webhook_error else None)
    return DecisionOut(id=decision.id, finding_id=decision.finding_id, decision=decision.decision,
                       reason=decision.reason, comment=decision.comment, decided_by=decision.decided_by,
                       decided_at=decision.decided_at, webhook=webhook)


def finding_out(f: FindingRow, decision: Decision | None) -> FindingOut:
    return FindingOut(id=f.id, scan_id=f.scan_id, identity_id=f.identity_id, category=f.category, action=f.action,
                      confidence=f.confidence, similarity=f.similarity, start_s=f.start_s, end_s=f.end_s,
                      created_at=f.created_at, detail=f.data, decision=decision_out(decision) if decision else None)


def visible_finding(finding_id: int, who: Principal, svc: Service) -> tuple[FindingRow, JobRow]:
    """The finding and its scan's job when `who` may see it (its scan's platform, or the likeness's
    owner); 404 otherwise."""
    found = svc.jobs.finding_by_id(finding_id)
    if found is not None:
        finding, job = found
        if (who.role == "platform" and job.principal == who.name and job.kind == "scan") or \
                (who.role == "rights_holder" and finding.owner == who.name):
            return finding, job
    raise HTTPException(404, f"no finding {finding_id}")


def record_decision(svc: Service, celery: Celery, who: Principal, finding_id: int, decision: str, reason: str,
                    comment: str) -> Decision:
    """Store a platform's decision and send its webhook (the console decides through this too)."""
    finding, job = visible_finding(finding_id, who, svc)
    if who.role != "platform":
        raise HTTPException(403, "only the platform that submitted the scan decides its findings")
    try:
        stored = svc.reviews.decide(finding, job.principal, who.name, who.key_id, decision, reason, comment,
                                    (job.params or {}).get("callback_url"))
    except DecisionRefused as exc:
        raise HTTPException(400, str(exc)) from exc
    if stored.webhook_status == "pending":
        try:
            dispatch.send(celery, dispatch.DECISION_WEBHOOK, stored.id)
        except Exception as exc:  # broker errors come in many types; the sweep re-sends pending webhooks
            log.warning("decision %s stored, its webhook not sent (the sweep will send it): %s", stored.id, exc)
    return stored


@router.get("/v1/reviews", response_model=ReviewPage,
            responses={400: {"description": "`cursor` is not one this service handed out."}},
            summary="Your findings waiting for review (action review, not decided), newest or surest first")
def review_queue(category: str | None = Query(None, max_length=40, description="impersonation, portrait_rights or "
                                                                                "ip_character."),
                 uploader: str | None = Query(None, max_length=200, description="Your id of the uploader."),
                 order: Literal["newest", "severity"] = Query(
                     "newest", description="newest: newest first. severity: highest confidence first, then newest."),
                 limit: int = Query(50, ge=1, le=200),
                 cursor: str | None = Query(None, description="The `next_cursor` of the page before (same order)."),
                 who: Principal = Depends(platform), svc: Service = Depends(service)) -> ReviewPage:
    fields.text("category", category)
    fields.text("uploader", uploader)
    items, total = svc.reviews.queue(who.name, category, uploader, queue_cursor(cursor, order), limit + 1, order)
    more, items = len(items) > limit, items[:limit]
    out = [ReviewItem(**finding_out(i.finding, None).model_dump(), uploader=i.uploader) for i in items]
    return ReviewPage(items=out, total=total, next_cursor=next_queue_cursor(items[-1].finding, order) if more else None)


def queue_cursor(cursor: str | None, order: str) -> tuple[float, datetime, int] | None:
    """ReviewStore.queue's `after` from a cursor of the same order (400 for any other cursor)."""
    if order == "severity":
        return pages.decode_ranked(cursor, int)
    at = pages.decode(cursor, int)
    return None if at is None else (0.0, *at)


def next_queue_cursor(last: FindingRow, order: str) -> str:
    return pages.encode(last.created_at, last.id, last.confidence if order == "severity" else None)


@router.get("/v1/scans/{scan_id}/findings", response_model=list[FindingOut],
            summary="A scan's findings with their ids and current decisions (the scan's platform)")
def scan_findings(scan_id: str = Path(description="The scan's id: its job's id.", max_length=64,
                                      pattern=fields.ID_PATTERN),
                  who: Principal = Depends(platform), svc: Service = Depends(service)) -> list[FindingOut]:
    """The report's findings as rows: each `id` is what POST /v1/findings/{id}/decision takes."""
    own_job(scan_id, who, svc)
    rows = svc.jobs.findings_of_scan(scan_id)
    decided = svc.reviews.latest([f.id for f in rows])
    return [finding_out(f, decided.get(f.id)) for f in rows]


@router.get("/v1/findings/{finding_id}", response_model=FindingOut,
            summary="One finding with its current decision (for its scan's platform and the likeness's owner)")
def get_finding(finding_id: int = FindingId, who: Principal = Depends(require("platform", "rights_holder")),
                svc: Service = Depends(service)) -> FindingOut:
    finding, _ = visible_finding(finding_id, who, svc)
    return finding_out(finding, svc.reviews.latest([finding.id]).get(finding.id))


@router.get("/v1/findings/{finding_id}/decisions", response_model=list[DecisionOut],
            summary="Every decision on a finding, oldest first (the audit trail)")
def decisions(finding_id: int = FindingId, who: Principal = Depends(require("platform", "rights_holder")),
              svc: Service = Depends(service)) -> list[DecisionOut]:
    finding, _ = visible_finding(finding_id, who, svc)
    return [decision_out(d) for d in svc.reviews.history(finding.id)]


@router.post("/v1/findings/{finding_id}/decision", status_code=201, response_model=DecisionOut,
             summary="Confirm or dismiss a finding of your scan, with a reason and a comment")
def decide(body: DecisionIn, finding_id: int = FindingId, who: Principal = Depends(platform),
           svc: Service = Depends(service), celery: Celery = Depends(sender)) -> DecisionOut:
    """Appends to the audit trail (a later decision supersedes, the earlier one stays), takes the
    finding out of the review queue and sends `finding.decided` to the scan's callback URL."""
    return decision_out(record_decision(svc, celery, who, finding_id, body.decision, body.reason, body.comment))


def reference_from_finding(svc: Service, celery: Celery, who: Principal, finding_id: int, number: int
                           ) -> tuple[JobOut, bool]:
    """Stage an evidence image of a confirmed finding as a new reference of its likeness and send the
    enrollment job (the same quality checks as a registration); (the job, whether it is new)."""
    finding, _ = visible_finding(finding_id, who, svc)
    if who.role != "rights_holder":
        raise HTTPException(403, "only the likeness's owner adds references to it")
    decision = svc.reviews.latest([finding.id]).get(finding.id)
    if decision is None or decision.decision != CONFIRMED:
        raise HTTPException(409, "only a finding a reviewer confirmed can become a reference")
    identity = svc.gallery_store.identity(finding.identity_id)
    if identity is None or identity.kind != "person":
        raise HTTPException(409, "references are added to a registered person; this likeness is not one")
    source = image_path(svc.media_root, finding.scan_id, finding.identity_id, number)
    if not source.is_file():
        raise HTTPException(404, f"no evidence image {number} of finding {finding_id}")
    job_id = new_id()
    folder = svc.media_root / "enroll" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / "000.jpg")
    params = {"name": identity.name, "kind": "person", "identity_id": identity.id, "face": "largest",
              "files_dir": str(folder), "files": [{"stored": "000.jpg", "name": f"finding-{finding_id}-{number}.jpg"}]}
    try:
        job, created = svc.jobs.create("enroll", who.name, params, f"{who.name}:reference:{finding_id}:{number}",
                                       job_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if created:
        publish(celery, job)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return job_out(job, svc), created


@router.post("/v1/findings/{finding_id}/reference", status_code=202, response_model=JobOut,
             responses={200: {"model": JobOut, "description": "This image was sent before: its job."},
                        409: {"description": "The finding is not confirmed, or its likeness is not a person."}},
             summary="Add a confirmed finding's evidence face to the likeness's references (its owner)")
def add_reference(body: ReferenceIn, response: Response, finding_id: int = FindingId,
                  who: Principal = Depends(require("rights_holder")), svc: Service = Depends(service),
                  celery: Celery = Depends(sender)) -> JobOut:
    """An enrollment job, checked like any reference (face size, sharpness, pose): its result says
    accepted or refused, and why; `references_added` is 0 for an image the likeness already has."""
    job, created = reference_from_finding(svc, celery, who, finding_id, body.image)
    if not created:
        response.status_code = 200
    return job
