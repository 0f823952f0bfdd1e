"""Rights-holder routes: register, list, change and remove one's own likenesses; read findings about them.

Every query is filtered by the key's principal (the owner): another owner's likenesses and
findings are invisible, not forbidden, so their existence is not revealed either.
"""
from __future__ import annotations

import shutil
from datetime import datetime

from celery import Celery
from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Path, Query, Response, UploadFile

from gallery.store import KINDS, check_match_threshold
from pipeline.policy import DEFAULT_POLICY, Policy
from pipeline.types import IdentityInfo
from workers.api import fields, pages
from workers.api.deps import require, sender, service
from workers.api.jobs import job_out, publish
from workers.api.reviews import finding_out
from workers.data.keys import Principal, check_authorized_uploader
from workers.data.jobs import new_id
from workers.api.schemas import AUTHORIZED_UPLOADERS, MATCH_THRESHOLD, FindingOut, JobOut, LikenessOut, LikenessPatch
from workers.service import Service
from workers.data.files import UploadRefused, display_name, safe_suffix, save_bounded

router = APIRouter(tags=["likenesses"])
rights_holder = require("rights_holder")
IdentityId = Path(description="The likeness's id.", max_length=64, pattern=fields.ID_PATTERN)


def _face(value: str | None) -> str | int | None:
    if value is None or value == "largest":
        return value
    if value.isdigit():
        return int(value)
    raise HTTPException(400, f"face must be 'largest' or a number, not {value!r}")


def _check_policy(policy: str | None) -> None:
    fields.text("policy", policy)
    if policy not in {p.value for p in Policy}:
        raise HTTPException(400, f"policy must be one of {', '.join(p.value for p in Policy)}, not {policy!r}")


def _check_uploaders(uploaders: list[str] | None) -> None:
    if uploaders is None:
        raise HTTPException(400, "authorized_uploaders must be a list (empty for none)")
    fields.texts("authorized_uploaders", uploaders, 401)
    try:
        for uploader in uploaders:
            check_authorized_uploader(uploader)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


def _check_threshold(kind: str, value: float | None) -> None:
    """Only a person's face match has its own threshold (the CLI's --threshold)."""
    if value is None:
        return
    if kind != "person":
        raise HTTPException(400, "match_threshold is for kind person")
    try:
        check_match_threshold(value)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


def _check_cast(svc: Service, kind: str, played_by: list[str]) -> None:
    """Actors are registered people of any owner: a studio's character is played by someone whose
    likeness another rights holder registered."""
    if played_by and kind != "character":
        raise HTTPException(400, "played_by is for kind character")
    for actor in played_by:
        identity = svc.gallery_store.identity(actor)
        if identity is None or identity.kind != "person":
            raise HTTPException(400, f"played_by {actor}: no registered person with that id")


@router.post("/v1/likenesses", status_code=202, response_model=JobOut,
             summary="Register a likeness from reference images (enrolled by a worker)")
def register(
    name: str = Form(min_length=1, max_length=200),
    files: list[UploadFile] = File(description="Reference images (JPEG/PNG), one face each, and clips: from a "
                                               "person's clip (an interview) the dominant person's most varied "
                                               "sharp faces are kept (`face` picks a person when none dominates); "
                                               "for a character also artwork (a few frames of each clip)."),
    kind: str = Form("person", description=f"One of {', '.join(KINDS)}."),
    policy: str = Form(DEFAULT_POLICY.value, description=f"One of {', '.join(p.value for p in Policy)}."),
    authorized_uploaders: list[str] = Form([], description=AUTHORIZED_UPLOADERS),
    match_threshold: float | None = Form(None, description=MATCH_THRESHOLD),
    face: str | None = Form(None, description="In photos with several faces: 'largest' or N (0 = leftmost)."),
    played_by: list[str] = Form([], description="kind character only: ids of the registered people who play it."),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
    who: Principal = Depends(rights_holder),
    svc: Service = Depends(service),
    celery: Celery = Depends(sender),
) -> JobOut:
    fields.text("name", name)  # all text first: nothing reaches the database or the disk unchecked
    fields.text("kind", kind)
    fields.text("face", face)
    fields.texts("played_by", played_by, 64)
    fields.text("Idempotency-Key", idempotency_key)
    if kind not in KINDS:
        raise HTTPException(400, f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    _check_cast(svc, kind, played_by)
    _check_policy(policy)
    _check_uploaders(authorized_uploaders)
    _check_threshold(kind, match_threshold)
    limits = svc.settings.service
    if len(files) > limits.max_references:
        raise HTTPException(413, f"at most {limits.max_references} reference images per registration")
    job_id = new_id()
    folder = svc.media_root / "enroll" / job_id
    stored = []
    try:
        for i, upload in enumerate(files):
            target = folder / f"{i:03d}{safe_suffix(upload.filename, '.jpg')}"
            save_bounded(upload.file, target, limits.max_reference_bytes)
            stored.append({"stored": target.name, "name": display_name(upload.filename, target.name)})
    except UploadRefused:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    params = {"name": name, "kind": kind, "policy": policy, "authorized_uploaders": authorized_uploaders,
              "match_threshold": match_threshold, "face": _face(face), "played_by": played_by,
              "files_dir": str(folder), "files": stored}
    key = fields.idempotency_key(f"{who.name}:key:{idempotency_key}") if idempotency_key else None
    try:
        job, created = svc.jobs.create("enroll", who.name, params, key, job_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no job points at it: nothing could ever delete it
        raise
    if created:
        publish(celery, job)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return job_out(job, svc)


def _likeness_out(info: IdentityInfo, references: int) -> LikenessOut:
    return LikenessOut(id=info.id, name=info.name, kind=info.kind, owner=info.owner, policy=info.policy,
                       authorized_uploaders=list(info.authorized_uploaders), match_threshold=info.match_threshold,
                       references=references)


@router.get("/v1/likenesses", response_model=list[LikenessOut], summary="Your registered likenesses")
def list_likenesses(who: Principal = Depends(rights_holder), svc: Service = Depends(service)) -> list[LikenessOut]:
    return [_likeness_out(i, n) for i, n in svc.gallery_store.identities(who.name)]


@router.patch("/v1/likenesses/{identity_id}", response_model=LikenessOut,
              summary="Change a likeness's policy, authorised uploaders or own match threshold (at once)")
def change(body: LikenessPatch, identity_id: str = IdentityId, who: Principal = Depends(rights_holder),
           svc: Service = Depends(service)) -> LikenessOut:
    """No references change, so no worker is needed: the new gallery version makes every worker
    reload the likeness (and rebuild its indexes from the database) before its next decision."""
    identity = svc.gallery_store.identity(identity_id)
    if identity is None or identity.owner != who.name:
        raise HTTPException(404, f"no likeness {identity_id}")
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if not changes:
        raise HTTPException(400, "nothing to change: send policy, authorized_uploaders or match_threshold")
    if "policy" in changes:
        _check_policy(changes["policy"])
    if "authorized_uploaders" in changes:
        _check_uploaders(changes["authorized_uploaders"])
    if "match_threshold" in changes:
        _check_threshold(identity.kind, changes["match_threshold"])
    try:
        info, version = svc.gallery_store.update_identity(identity_id, who.name, changes)
    except KeyError as exc:  # removed a moment ago
        raise HTTPException(404, f"no likeness {identity_id}") from exc
    svc.signal.announce(version)
    return _likeness_out(info, svc.gallery_store.reference_count(identity_id))


@router.delete("/v1/likenesses/{identity_id}", status_code=202, response_model=JobOut,
               summary="Remove a likeness: its vectors, references and reference copies (by a worker)")
def remove(response: Response, identity_id: str = IdentityId, who: Principal = Depends(rights_holder),
           svc: Service = Depends(service), celery: Celery = Depends(sender)) -> JobOut:
    identity = svc.gallery_store.identity(identity_id)
    if identity is None or identity.owner != who.name:
        raise HTTPException(404, f"no likeness {identity_id}")
    job, created = svc.jobs.create("remove", who.name, {"identity_id": identity_id},
                                   f"{who.name}:remove:{identity_id}")
    if created:
        publish(celery, job)
    else:
        response.status_code = 200
    return job_out(job, svc)


@router.get("/v1/findings", response_model=list[FindingOut], tags=["findings"],
            responses={200: {"headers": {
                "X-Total-Count": {"description": "Findings the filter matches, over every page.",
                                  "schema": {"type": "integer"}},
                "X-Next-Cursor": {"description": "Pass as `cursor` for the next page; absent on the last page.",
                                  "schema": {"type": "string"}}}},
                       400: {"description": "`cursor` is not one this service handed out."}},
            summary="Findings about your likenesses, newest first, a page at a time")
def findings(response: Response,
             identity_id: str | None = Query(None, max_length=64, pattern=fields.ID_PATTERN),
             since: datetime | None = Query(None, description="Only findings made at or after this time "
                                                              "(ISO 8601; without an offset: UTC)."),
             limit: int = Query(100, ge=1, le=1000),
             cursor: str | None = Query(None, description="The X-Next-Cursor header of the page before."),
             offset: int = Query(0, ge=0, le=1_000_000_000, deprecated=True,
                                 description="Deprecated (removed in the next release): use `cursor`."),
             who: Principal = Depends(rights_holder), svc: Service = Depends(service)) -> list[FindingOut]:
    """The body stays a list (as before); the page's `total` and `next_cursor` come as the headers
    X-Total-Count and X-Next-Cursor. Pages follow (created_at, finding id) descending, and a cursor
    continues right after its page's last finding, whatever was found since."""
    after = pages.decode(cursor, int)
    rows, total = svc.jobs.findings_of(who.name, identity_id, limit + 1, offset, pages.moment("since", since), after)
    more, rows = len(rows) > limit, rows[:limit]
    response.headers["X-Total-Count"] = str(total)
    if more:
        response.headers["X-Next-Cursor"] = pages.encode(rows[-1].created_at, rows[-1].id)
    decided = svc.reviews.latest([f.id for f in rows])
    return [finding_out(f, decided.get(f.id)) for f in rows]
