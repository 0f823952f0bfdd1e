"""Platform reviewers: the queue of findings waiting for review, a finding's page, the decision,
and the evidence images (served to the signed-in scan platform or likeness owner only)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import Response

from workers.api import fields
from workers.api.console import views
from workers.api.console.render import page, redirect
from workers.api.console.session import Viewer, check_csrf, require_role, viewer
from workers.api.reviews import (next_queue_cursor, queue_cursor, record_decision, reference_from_finding,
                                 visible_finding)
from workers.scans.server_paths import without_server_paths
from workers.data.reviews import CONFIRMED, DISMISSED, QUEUE_ORDERS, REASONS
from workers.scans import accounts
from workers.scans.evidence import MAX_IMAGES, image_path

router = APIRouter()
CATEGORIES = ("impersonation", "portrait_rights", "ip_character")
PAGE = 25
FindingId = Path(ge=1, lt=2**31)


@router.get("/console/queue", include_in_schema=False)
def queue(request: Request, category: str | None = Query(None, max_length=40),
          uploader: str | None = Query(None, max_length=200), cursor: str | None = Query(None, max_length=500),
          order: str = Query("severity", max_length=20), who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "platform")
    category = category or None
    uploader = (uploader or "").strip() or None
    fields.text("uploader", uploader)
    if category is not None and category not in CATEGORIES:
        raise HTTPException(400, f"category must be one of {', '.join(CATEGORIES)}")
    if order not in QUEUE_ORDERS:
        raise HTTPException(400, f"order must be one of {', '.join(QUEUE_ORDERS)}")
    svc = request.app.state.service
    items, total = svc.reviews.queue(who.name, category, uploader, queue_cursor(cursor, order), PAGE + 1, order)
    more, items = len(items) > PAGE, items[:PAGE]
    next_cursor = next_queue_cursor(items[-1].finding, order) if more else None
    return page(request, "queue.html", who, items=items, total=total, next_cursor=next_cursor, category=category,
                uploader=uploader, categories=CATEGORIES, order=order, orders=QUEUE_ORDERS)


def _finding(request: Request, who: Viewer, finding_id: int, error: str | None = None, status: int = 200) -> Response:
    svc = request.app.state.service
    finding, job = visible_finding(finding_id, who.principal, svc)
    account = None
    if who.role == "platform":
        report = without_server_paths(svc.jobs.report(finding.scan_id) or {}, job.params or {}, svc.media_root)
        view = views.for_platform(finding, report, job.params or {})
        if view.uploader:  # the uploader as an account: what GET /v1/uploaders/{id} gives
            account = accounts.history(svc, who.name, view.uploader, svc.settings.ladder)
    else:
        view = views.for_owner(finding)
    history = svc.reviews.history(finding.id)
    reasons = {d: [(code, words) for code, (kind, words) in REASONS.items() if kind == d]
               for d in (CONFIRMED, DISMISSED)}
    return page(request, "finding.html", who, status=status, view=view, history=history,
                current=history[-1] if history else None, reasons=reasons, error=error,
                decided=request.query_params.get("decided") == "1", account=account)


@router.get("/console/findings/{finding_id}", include_in_schema=False)
def finding_page(request: Request, finding_id: int = FindingId, who: Viewer = Depends(viewer)) -> Response:
    return _finding(request, who, finding_id)


@router.post("/console/findings/{finding_id}/decision", include_in_schema=False)
def decide(request: Request, finding_id: int = FindingId, decision: str = Form("", max_length=20),
           reason: str = Form("", max_length=40), comment: str = Form("", max_length=2000),
           csrf_token: str = Form("", max_length=100), who: Viewer = Depends(viewer)) -> Response:
    check_csrf(who.session, csrf_token)
    require_role(who, "platform")
    svc = request.app.state.service
    visible_finding(finding_id, who.principal, svc)  # 404 before any other answer
    try:
        record_decision(svc, request.app.state.sender, who.principal, finding_id, decision, reason, comment)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return _finding(request, who, finding_id, error=str(exc.detail), status=400)
    return redirect(f"/console/findings/{finding_id}?decided=1")


@router.post("/console/findings/{finding_id}/reference", include_in_schema=False)
def use_as_reference(request: Request, finding_id: int = FindingId, image: int = Form(0, ge=0, lt=MAX_IMAGES),
                     csrf_token: str = Form("", max_length=100), who: Viewer = Depends(viewer)) -> Response:
    """The owner approves a confirmed appearance as a new reference (an enrollment job)."""
    check_csrf(who.session, csrf_token)
    require_role(who, "rights_holder")
    job, _ = reference_from_finding(request.app.state.service, request.app.state.sender, who.principal, finding_id,
                                    image)
    return redirect(f"/console/registrations/{job.job_id}")


@router.get("/console/findings/{finding_id}/evidence/{number}", include_in_schema=False)
def evidence_image(request: Request, finding_id: int = FindingId, number: int = Path(ge=0, lt=MAX_IMAGES),
                   who: Viewer = Depends(viewer)) -> Response:
    svc = request.app.state.service
    finding, _ = visible_finding(finding_id, who.principal, svc)
    try:
        data = image_path(svc.media_root, finding.scan_id, finding.identity_id, number).read_bytes()
    except FileNotFoundError as exc:
        raise HTTPException(404, "no such evidence image") from exc
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store",
                                                            "X-Content-Type-Options": "nosniff"})
