"""Platform routes: submit an upload for scanning (multipart, or a path in the platform's own folder
of the media root), read the report and delete the scan; evidence images, for the scan's platform
and the owner of the likeness found. Every scan route names its id `{scan_id}` (the scan's job id)."""
from __future__ import annotations

import hashlib
import re
import shutil
from datetime import datetime
from pathlib import Path as FilePath
from typing import Any, Literal

from celery import Celery
from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Path, Query, Response, UploadFile

from pipeline.post import MAX_CAPTION_CHARS, MAX_ITEMS
from workers.scans import retention
from workers.api import fields, pages
from workers.api.deps import require, sender, service
from workers.api.jobs import job_out, own_job, publish, scrub
from workers.api.reviews import decision_out
from workers.data.keys import SEPARATOR, Principal
from workers.scans.evidence import MAX_IMAGES, image_path
from workers.scans.server_paths import without_server_paths
from workers.data.jobs import DELETED, new_id
from workers.api.schemas import JobOut, ScanItem, ScanPage
from workers.service import Service
from workers.data.files import (MAX_PATH, UploadRefused, display_name, file_sha256, platform_dir,
                                resolve_platform_path, safe_suffix, save_bounded, upload_dir)
from workers.scans.webhooks import WebhookError, WebhookRefused, check_url, resolve

router = APIRouter(tags=["scans"])
platform = require("platform")
_CAPTION_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ScanId = Path(description="The scan's id: its job's id.", max_length=64, pattern=fields.ID_PATTERN)


@router.post("/v1/scans", status_code=202, response_model=JobOut,
             responses={200: {"model": JobOut, "description": "The same upload was submitted before: its job."}},
             summary="Submit a video for scanning")
def submit_scan(
    response: Response,
    uploader: str = Form(min_length=1, max_length=200,
                         description="Your id of the user who uploaded. Likenesses are decided for "
                                     "'<your platform principal>:<uploader>', which is how rights holders "
                                     "authorise your users; the webhook echoes this id as sent."),
    file: UploadFile | None = File(None, description="The video, as a multipart upload."),
    path: str | None = Form(None, max_length=MAX_PATH,
                            description="Or: the video's path relative to your platform's folder of the media "
                                        "root, <media root>/platforms/<your principal>/."),
    callback_url: str | None = Form(None, description="Called when the scan ends: scan.finished (any verdict) "
                                                      "or scan.failed (retried; docs/service.md Webhooks)."),
    declared_ai: bool = Form(False, description="The uploader declared the video AI-generated (the creator's "
                                                "own label at upload). Declared AI gets `label`; AI evidence the "
                                                "uploader did not declare gets the platform's setting."),
    items: list[UploadFile] | None = File(None, description="Or: a post (a note, a carousel): its images "
                                          "(JPEG, PNG, WebP, HEIC, AVIF) and videos, in order, as repeated "
                                          "multipart files; one verdict with per-item findings."),
    paths: list[str] | None = Form(None, description="Or: a post's items as paths in your platform's folder "
                                                     "of the media root, in order."),
    caption: str | None = Form(None, max_length=MAX_CAPTION_CHARS,
                               description="A post's caption: a declaration in it ('#AI生成', 'AI-generated') "
                                           "counts as the uploader's, as declared_ai does."),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200,
                                         description="Default: the upload's SHA-256 and the uploader."),
    who: Principal = Depends(platform),
    svc: Service = Depends(service),
    celery: Celery = Depends(sender),
) -> JobOut:
    if SEPARATOR in who.name:  # a key issued before principals were checked: its namespace is ambiguous
        raise HTTPException(403, f"this platform key's principal {who.name!r} contains {SEPARATOR!r}; "
                                 "ask an admin for a key whose principal does not")
    fields.text("uploader", uploader)
    fields.text("callback_url", callback_url, 2000)
    fields.text("Idempotency-Key", idempotency_key)
    if caption is not None and _CAPTION_CONTROL.search(caption):  # line breaks are a caption's own
        raise HTTPException(400, "caption: must not contain control characters other than line breaks and tabs")
    sent = [name for name, value in (("file", file), ("path", path), ("items", items), ("paths", paths)) if value]
    if len(sent) != 1:
        raise HTTPException(400, "send exactly one of `file` (multipart upload) or `path` (in your platform's "
                                 "folder of the media root), or a post's `items` (multipart files) or `paths`")
    if caption is not None and (file is not None or path is not None):
        raise HTTPException(400, "`caption` belongs to a post: send its files as `items` or `paths`")
    if callback_url:
        try:
            check_url(callback_url)
            resolve(callback_url, svc.settings.service.webhook_allow_private)
        except WebhookRefused as exc:  # a private or malformed address never becomes deliverable
            raise HTTPException(400, f"callback_url: {exc}") from exc
        except WebhookError:
            pass  # not resolvable right now: delivery resolves again, checks again and retries
    job_id = new_id()
    limit = svc.settings.service.max_upload_bytes
    folder = upload_dir(svc.media_root, job_id)
    if items or paths:
        return _submit_post(response, who, svc, celery, job_id, uploader, items or [], paths or [], caption or "",
                            callback_url, declared_ai, idempotency_key)
    if file is not None:
        video = folder / f"video{safe_suffix(file.filename, '.mp4')}"
        shown = display_name(file.filename, video.name)
        try:
            sha256 = save_bounded(file.file, video, limit)
        except UploadRefused:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    else:
        assert path is not None
        video = resolve_platform_path(svc.media_root, who.name, path, limit)
        shown = video.relative_to(platform_dir(svc.media_root, who.name).resolve()).as_posix()
        sha256 = file_sha256(video)
    key = (f"{who.name}:key:{idempotency_key}" if idempotency_key
           else f"{who.name}:{uploader}:{sha256}" + (":declared-ai" if declared_ai else ""))
    params = {"video": str(video), "video_name": shown, "uploader": uploader, "callback_url": callback_url,
              "sha256": sha256, "declared_ai": declared_ai}
    return _create_and_publish(response, who, svc, celery, folder, params, key, job_id)


def _create_and_publish(response: Response, who: Principal, svc: Service, celery: Celery, folder: FilePath,
                        params: dict, key: str, job_id: str) -> JobOut:
    """Store the scan job and send it; the upload folder goes when no job points at it (a failed insert)
    or when an earlier job with the same key answers (200 instead of 202)."""
    try:
        job, created = svc.jobs.create("scan", who.name, params, fields.idempotency_key(key), job_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no job points at it: nothing could ever delete it
        raise
    if not created:
        shutil.rmtree(folder, ignore_errors=True)
        response.status_code = 200
        return job_out(job, svc)
    publish(celery, job)
    return job_out(job, svc)


def _submit_post(response: Response, who: Principal, svc: Service, celery: Celery, job_id: str, uploader: str,
                 uploads: list[UploadFile], relative: list[str], caption: str, callback_url: str | None,
                 declared_ai: bool, idempotency_key: str | None) -> JobOut:
    """Store a post's items (uploads in the job's folder, or paths in the platform's) and its job."""
    if len(uploads) + len(relative) > MAX_ITEMS:
        raise HTTPException(400, f"a post holds at most {MAX_ITEMS} items")
    for number, item_path in enumerate(relative):
        fields.text(f"paths[{number}]", item_path, MAX_PATH)
    limit = svc.settings.service.max_upload_bytes
    folder = upload_dir(svc.media_root, job_id)
    stored: list[dict[str, str]] = []
    try:
        for number, upload in enumerate(uploads):
            target = folder / f"item-{number}{safe_suffix(upload.filename, '.bin')}"
            sha256 = save_bounded(upload.file, target, limit)
            stored.append({"path": str(target), "name": display_name(upload.filename, target.name),
                           "sha256": sha256})
        for item_path in relative:
            target = resolve_platform_path(svc.media_root, who.name, item_path, limit)
            shown = target.relative_to(platform_dir(svc.media_root, who.name).resolve()).as_posix()
            stored.append({"path": str(target), "name": shown, "sha256": file_sha256(target)})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    content = hashlib.sha256("\n".join([*(i["sha256"] for i in stored), caption]).encode()).hexdigest()
    key = (f"{who.name}:key:{idempotency_key}" if idempotency_key
           else f"{who.name}:{uploader}:post:{content}" + (":declared-ai" if declared_ai else ""))
    params = {"video": str(folder), "video_name": f"post of {len(stored)} items", "items": stored,
              "caption": caption, "uploader": uploader, "callback_url": callback_url, "declared_ai": declared_ai}
    return _create_and_publish(response, who, svc, celery, folder, params, key, job_id)


@router.get("/v1/scans", response_model=ScanPage,
            responses={400: {"description": "`cursor` is not one this service handed out."}},
            summary="Your scans, newest first, a page at a time")
def list_scans(status: Literal["queued", "running", "done", "failed", "deleted"] | None = Query(None),
               verdict: Literal["allow", "label", "review", "restrict", "block"] | None = Query(
                   None, description="Only done scans with this verdict action."),
               since: datetime | None = Query(None, description="Only scans submitted at or after this time "
                                                                "(ISO 8601; without an offset: UTC)."),
               limit: int = Query(50, ge=1, le=200),
               cursor: str | None = Query(None, description="The `next_cursor` of the page before."),
               who: Principal = Depends(platform), svc: Service = Depends(service)) -> ScanPage:
    """Only the calling platform's scans. Pages follow (created_at, scan id) descending, and a cursor
    continues right after the last scan of its page, whatever was submitted since."""
    after = pages.decode(cursor, str)
    rows, total = svc.jobs.scans_of(who.name, status, verdict, pages.moment("since", since), after, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    items = [ScanItem(scan_id=job.id, status=job.status, uploader=job.params.get("uploader"),
                      verdict=action if job.status == "done" else None, created_at=job.created_at,
                      finished_at=job.finished_at,
                      error=scrub(job.error) if job.error and job.status == "failed" else None)
             for job, action in rows]
    last = rows[-1][0] if more else None
    return ScanPage(items=items, total=total, next_cursor=pages.encode(last.created_at, last.id) if last else None)


@router.get("/v1/scans/{scan_id}/report", response_model=dict[str, Any],
            responses={409: {"description": "The scan has not finished, or it failed."}},
            summary="The report of a finished scan (DESIGN.md's report JSON)")
def get_report(scan_id: str = ScanId, who: Principal = Depends(platform), svc: Service = Depends(service)) -> dict:
    """`video.path` is the name the platform gave: its upload's file name or the path it submitted."""
    job = own_job(scan_id, who, svc)
    if job.status == DELETED:
        raise HTTPException(404, f"scan {scan_id} was deleted")
    if job.status == "failed":
        raise HTTPException(409, f"scan failed: {scrub(job.error or '')}")
    report = svc.jobs.report(scan_id) if job.status == "done" else None
    if report is None:
        raise HTTPException(409, f"scan not finished (status {job.status})")
    # Stored since server_paths.without_server_paths runs before storing; older reports still hold paths.
    return with_decisions(without_server_paths(report, job.params, svc.media_root), scan_id, svc)


def with_decisions(report: dict, scan_id: str, svc: Service) -> dict:
    """Each finding of the served report with its `finding_id` (what POST /v1/findings/{id}/decision
    takes) and its current reviewer `decision` (null while undecided): the human outcome next to the
    machine's action, which the stored report keeps as it was decided."""
    rows = {row.identity_id: row.id for row in svc.jobs.findings_of_scan(scan_id)}
    latest = svc.reviews.latest(list(rows.values()))
    for finding in report.get("findings", []):
        finding_id = rows.get(finding.get("identity", {}).get("id"))
        decided = latest.get(finding_id) if finding_id is not None else None
        finding["finding_id"] = finding_id
        finding["decision"] = None if decided is None else decision_out(decided).model_dump(mode="json")
    return report


@router.delete("/v1/scans/{scan_id}", status_code=204, response_class=Response,
               responses={409: {"description": "The scan is queued or running: delete it once it has finished."}},
               summary="Delete a scan for good: its upload (if sent as a file), report, findings, evidence images")
def delete_scan(scan_id: str = ScanId, who: Principal = Depends(platform), svc: Service = Depends(service)) -> Response:
    """Idempotent: deleting a deleted scan answers 204 again. A file submitted by `path` is the
    platform's own and stays; the job is kept as a tombstone with status `deleted`."""
    own_job(scan_id, who, svc)
    if not retention.delete_scan(svc, scan_id):
        raise HTTPException(409, f"scan {scan_id} is still queued or running; delete it once it has finished")
    return Response(status_code=204)


@router.get("/v1/scans/{scan_id}/evidence/{identity_id}/{number}", response_class=Response, tags=["findings"],
            responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG, long side at most 256 px."}},
            summary="An evidence image of a finding (the `image` of its evidence entries)")
def get_evidence_image(scan_id: str = ScanId,
                       identity_id: str = Path(max_length=64, pattern=fields.ID_PATTERN),
                       number: int = Path(ge=0, lt=MAX_IMAGES),
                       who: Principal = Depends(require("platform", "rights_holder")),
                       svc: Service = Depends(service)) -> Response:
    """For the platform that submitted the scan and the owner of the likeness the finding is about;
    anyone else gets 404, as for an image that was never made or was deleted with its likeness."""
    finding = svc.jobs.finding(scan_id, identity_id)
    if finding is None:
        raise HTTPException(404, f"no evidence image {scan_id}/{identity_id}/{number}")
    if who.role == "platform":
        own_job(scan_id, who, svc)
    elif finding.owner != who.name:
        raise HTTPException(404, f"no evidence image {scan_id}/{identity_id}/{number}")
    try:
        data = image_path(svc.media_root, scan_id, identity_id, number).read_bytes()
    except FileNotFoundError as exc:
        raise HTTPException(404, f"no evidence image {scan_id}/{identity_id}/{number}") from exc
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
