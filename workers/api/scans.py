"""Platform routes: submit an upload for scanning (multipart or a path under the media root), read
the report and delete the scan; evidence images, for the scan's platform and the owner of the
likeness found."""
from __future__ import annotations

import shutil
from typing import Any

from celery import Celery
from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Path, Response, UploadFile

from workers.scans import retention
from workers.api.deps import require, sender, service
from workers.api.jobs import job_out, own_job, publish
from workers.data.keys import SEPARATOR, Principal
from workers.scans.evidence import MAX_IMAGES, image_path
from workers.data.jobs import DELETED, new_id
from workers.api.schemas import JobOut
from workers.service import Service
from workers.data.files import UploadRefused, file_sha256, resolve_in_root, safe_suffix, save_bounded, upload_dir
from workers.scans.webhooks import WebhookRefused, check_url

router = APIRouter(tags=["scans"])
platform = require("platform")


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
    path: str | None = Form(None, description="Or: the video's path relative to the media root."),
    callback_url: str | None = Form(None, description="Called when the verdict is not allow (retried)."),
    declared_ai: bool = Form(False, description="The uploader declared the video AI-generated (the creator's "
                                                "own label at upload). Declared AI gets `label`; AI evidence the "
                                                "uploader did not declare gets the platform's setting."),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200,
                                         description="Default: the upload's SHA-256 and the uploader."),
    who: Principal = Depends(platform),
    svc: Service = Depends(service),
    celery: Celery = Depends(sender),
) -> JobOut:
    if SEPARATOR in who.name:  # a key issued before principals were checked: its namespace is ambiguous
        raise HTTPException(403, f"this platform key's principal {who.name!r} contains {SEPARATOR!r}; "
                                 "ask an admin for a key whose principal does not")
    if (file is None) == (path is None):
        raise HTTPException(400, "send exactly one of `file` (multipart upload) or `path` (under the media root)")
    if callback_url:
        try:
            check_url(callback_url)
        except WebhookRefused as exc:
            raise HTTPException(400, str(exc)) from exc
    job_id = new_id()
    limit = svc.settings.service.max_upload_bytes
    folder = upload_dir(svc.media_root, job_id)
    if file is not None:
        video = folder / f"video{safe_suffix(file.filename, '.mp4')}"
        try:
            sha256 = save_bounded(file.file, video, limit)
        except UploadRefused:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    else:
        video = resolve_in_root(svc.media_root, path, limit)
        sha256 = file_sha256(video)
    key = (f"{who.name}:key:{idempotency_key}" if idempotency_key
           else f"{who.name}:{uploader}:{sha256}" + (":declared-ai" if declared_ai else ""))
    params = {"video": str(video), "uploader": uploader, "callback_url": callback_url, "sha256": sha256,
              "declared_ai": declared_ai}
    job, created = svc.jobs.create("scan", who.name, params, key, job_id)
    if not created:
        shutil.rmtree(folder, ignore_errors=True)
        response.status_code = 200
        return job_out(job, svc)
    publish(celery, job)
    return job_out(job, svc)


@router.get("/v1/scans/{job_id}/report", response_model=dict[str, Any],
            responses={409: {"description": "The scan has not finished, or it failed."}},
            summary="The report of a finished scan (DESIGN.md's report JSON)")
def get_report(job_id: str, who: Principal = Depends(platform), svc: Service = Depends(service)) -> dict:
    job = own_job(job_id, who, svc)
    if job.status == DELETED:
        raise HTTPException(404, f"scan {job_id} was deleted")
    if job.status == "failed":
        raise HTTPException(409, f"scan failed: {job.error}")
    report = svc.jobs.report(job_id) if job.status == "done" else None
    if report is None:
        raise HTTPException(409, f"scan not finished (status {job.status})")
    return report


@router.delete("/v1/scans/{scan_id}", status_code=204, response_class=Response,
               responses={409: {"description": "The scan is queued or running: delete it once it has finished."}},
               summary="Delete a scan for good: its upload (if sent as a file), report, findings, evidence images")
def delete_scan(scan_id: str, who: Principal = Depends(platform), svc: Service = Depends(service)) -> Response:
    """Idempotent: deleting a deleted scan answers 204 again. A file submitted by `path` is the
    platform's own and stays; the job is kept as a tombstone with status `deleted`."""
    own_job(scan_id, who, svc)
    if not retention.delete_scan(svc, scan_id):
        raise HTTPException(409, f"scan {scan_id} is still queued or running; delete it once it has finished")
    return Response(status_code=204)


@router.get("/v1/scans/{scan_id}/evidence/{identity_id}/{number}", response_class=Response, tags=["findings"],
            responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG, long side at most 256 px."}},
            summary="An evidence image of a finding (the `image` of its evidence entries)")
def get_evidence_image(scan_id: str, identity_id: str, number: int = Path(ge=0, lt=MAX_IMAGES),
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
