"""Rights holders: their likenesses (with each registration's accepted and refused references),
registering a new one, their findings across platforms, and the look-alikes reviewers dismissed."""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import Response

from pipeline.policy import DEFAULT_POLICY, Policy
from workers.api import fields, pages
from workers.api.console.render import page, redirect
from workers.api.console.session import Viewer, check_csrf, require_role, viewer
from workers.api.likenesses import change, register
from workers.api.schemas import LikenessPatch
from workers.data.files import UploadRefused
from workers.data.jobs import client_error

router = APIRouter()
PAGE = 25
IdentityId = Path(max_length=64, pattern=fields.ID_PATTERN)
JobId = Path(max_length=64, pattern=fields.ID_PATTERN)  # a Path is not shared between parameters of two names
POLICIES = [(p.value, p.value.replace("_", " ")) for p in Policy]


def _registrations(svc, owner: str) -> dict[str, list]:
    """Each likeness's registration jobs (their accepted and refused references), by identity id."""
    found: dict[str, list] = {}
    for job in svc.jobs.jobs_of(owner, "enroll"):
        identity_id = (job.result or {}).get("identity_id")
        if identity_id:
            found.setdefault(identity_id, []).append(job)
    return found


@router.get("/console/likenesses", include_in_schema=False)
def likenesses(request: Request, who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "rights_holder")
    svc = request.app.state.service
    return page(request, "likenesses.html", who, likenesses=svc.gallery_store.identities(who.name))


@router.get("/console/likenesses/new", include_in_schema=False)
def register_form(request: Request, who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "rights_holder")
    return _register_page(request, who)


def _register_page(request: Request, who: Viewer, status: int = 200, **shown) -> Response:
    """The registration form; `people`: the owner's registered people, who may play a character."""
    people = [info for info, _ in request.app.state.service.gallery_store.identities(who.name) if info.kind == "person"]
    shown = {"policies": POLICIES, "default_policy": DEFAULT_POLICY.value, "kind": "person", "played_by": [],
             **shown}
    return page(request, "register.html", who, status=status, people=people, **shown)


@router.post("/console/likenesses/new", include_in_schema=False)
def register_likeness(request: Request, name: str = Form("", max_length=200),
                      policy: str = Form(DEFAULT_POLICY.value, max_length=40),
                      largest: bool = Form(False), uploaders: str = Form("", max_length=20_000),
                      kind: str = Form("person", max_length=20), played_by: list[str] = Form([]),
                      files: list[UploadFile] = File(default_factory=list),
                      csrf_token: str = Form("", max_length=100), who: Viewer = Depends(viewer)) -> Response:
    """Through the API's own registration (the same checks, staging and enrollment job)."""
    check_csrf(who.session, csrf_token)
    require_role(who, "rights_holder")
    files = [f for f in files if f.filename]
    svc = request.app.state.service
    problem = None if name.strip() else "name: required"
    problem = problem or (None if files else "add at least one photo or clip")
    if problem is None:
        try:
            job = register(name=name.strip(), files=files, kind=kind, policy=policy,
                           authorized_uploaders=[u.strip() for u in uploaders.splitlines() if u.strip()],
                           match_threshold=None, face="largest" if largest else None,
                           played_by=played_by if kind == "character" else [],
                           idempotency_key=None, who=who.principal, svc=svc, celery=request.app.state.sender)
        except HTTPException as exc:
            problem = str(exc.detail)
        except UploadRefused as exc:
            problem = exc.reason
        else:
            return redirect(f"/console/registrations/{job.job_id}")
    return _register_page(request, who, status=400, error=problem, default_policy=policy, name=name,
                          uploaders=uploaders, kind=kind, played_by=played_by)


@router.get("/console/registrations/{job_id}", include_in_schema=False)
def registration(request: Request, job_id: str = JobId, who: Viewer = Depends(viewer)) -> Response:
    """A registration job: refreshes itself until it ends, then shows each reference's verdict."""
    require_role(who, "rights_holder")
    svc = request.app.state.service
    job = svc.jobs.get(job_id)
    if job is None or job.principal != who.name or job.kind != "enroll":
        raise HTTPException(404, "no such registration")
    return page(request, "registration.html", who, job=job, error=client_error(job.error) if job.error else None,
                refresh=job.status in ("queued", "running"))


def _likeness(request: Request, who: Viewer, identity_id: str, error: str | None = None, status: int = 200,
              saved: bool = False) -> Response:
    svc = request.app.state.service
    identity = svc.gallery_store.identity(identity_id)
    if identity is None or identity.owner != who.name:
        raise HTTPException(404, "no such likeness")
    rows, total = svc.jobs.findings_of(who.name, identity_id, PAGE)
    return page(request, "likeness.html", who, status=status, identity=identity, policies=POLICIES, error=error,
                saved=saved, references=svc.gallery_store.reference_count(identity_id),
                registrations=_registrations(svc, who.name).get(identity_id, []), findings=rows, total=total,
                decisions=svc.reviews.latest([f.id for f in rows]))


@router.get("/console/likenesses/{identity_id}", include_in_schema=False)
def likeness(request: Request, identity_id: str = IdentityId, who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "rights_holder")
    return _likeness(request, who, identity_id, saved=request.query_params.get("saved") == "1")


@router.post("/console/likenesses/{identity_id}", include_in_schema=False)
def change_likeness(request: Request, identity_id: str = IdentityId, policy: str = Form("", max_length=40),
                    uploaders: str = Form("", max_length=20_000), threshold: str = Form("", max_length=20),
                    csrf_token: str = Form("", max_length=100), who: Viewer = Depends(viewer)) -> Response:
    """Policy, authorised uploaders and own threshold at once, through the API's PATCH."""
    check_csrf(who.session, csrf_token)
    require_role(who, "rights_holder")
    try:
        value = float(threshold) if threshold.strip() else None
    except ValueError:
        return _likeness(request, who, identity_id, error="match threshold: a number from -1 to 1, or empty",
                         status=400)
    patch = LikenessPatch(policy=policy, match_threshold=value,
                          authorized_uploaders=[u.strip() for u in uploaders.splitlines() if u.strip()])
    try:
        change(patch, identity_id=identity_id, who=who.principal, svc=request.app.state.service)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return _likeness(request, who, identity_id, error=str(exc.detail), status=400)
    return redirect(f"/console/likenesses/{identity_id}?saved=1")


@router.get("/console/findings", include_in_schema=False)
def findings(request: Request, cursor: str | None = Query(None, max_length=500),
             who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "rights_holder")
    svc = request.app.state.service
    rows, total = svc.jobs.findings_of(who.name, None, PAGE + 1, 0, None, pages.decode(cursor, int))
    more, rows = len(rows) > PAGE, rows[:PAGE]
    names = {info.id: info.name for info, _ in svc.gallery_store.identities(who.name)}
    return page(request, "findings.html", who, findings=rows, total=total, names=names,
                decisions=svc.reviews.latest([f.id for f in rows]),
                next_cursor=pages.encode(rows[-1].created_at, rows[-1].id) if more else None)


@router.get("/console/lookalikes", include_in_schema=False)
def lookalikes(request: Request, who: Viewer = Depends(viewer)) -> Response:
    require_role(who, "rights_holder")
    svc = request.app.state.service
    names = {info.id: info.name for info, _ in svc.gallery_store.identities(who.name)}
    return page(request, "lookalikes.html", who, dismissed=svc.reviews.dismissed_lookalikes(who.name), names=names)
