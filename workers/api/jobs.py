"""Job status for whoever submitted the job, with live progress for scans."""
from __future__ import annotations

import logging
import math

from celery import Celery
from fastapi import APIRouter, Depends, HTTPException, Path

from workers import dispatch
from workers.api.deps import require, service
from workers.data.keys import Principal
from workers.data.db import JobRow
from workers.data.jobs import client_error as scrub
from workers.api.fields import ID_PATTERN
from workers.api.schemas import JobOut, Progress, Webhook
from workers.service import Service

log = logging.getLogger(__name__)
router = APIRouter()
# Which role may see which kind of job (besides being the principal that submitted it).
KINDS_BY_ROLE = {"platform": ("scan",), "rights_holder": ("enroll", "remove")}


def publish(sender: Celery, job: JobRow) -> None:
    """Send the job's first task. If Redis stays away past the publish retries the job is still
    stored, and the workers' sweep sends it later: a submission is never lost."""
    try:
        dispatch.send_job(sender, job.kind, job.id)
    except Exception as exc:  # broker errors come in many types; the job is safe in the database
        log.warning("job %s stored but not sent (the sweep will send it): %s", job.id, exc)


def _progress(job: JobRow, svc: Service) -> Progress | None:
    if job.kind != "scan":
        return None
    interval = svc.settings.scan.sampling.interval_s
    total = job.duration_s
    frames_total = math.ceil(total / interval) if total else None
    if job.status == "done":
        return Progress(done_s=total or 0.0, total_s=total, frames_done=frames_total or 0,
                        frames_total=frames_total, fraction=1.0)
    parts = (svc.progress.read(job.id) or {}).values()
    done_s = sum(p.done_s for p in parts)
    frames = sum(p.frames for p in parts)
    fraction = min(1.0, done_s / total) if total else None
    return Progress(done_s=round(done_s, 3), total_s=total, frames_done=frames, frames_total=frames_total,
                    fraction=None if fraction is None else round(fraction, 4))


def job_out(job: JobRow, svc: Service) -> JobOut:
    webhook = None
    if job.webhook_status:
        webhook = Webhook(status=job.webhook_status, attempts=job.webhook_attempts,
                          error=scrub(job.webhook_error) if job.webhook_error else None)
    return JobOut(id=job.id, job_id=job.id, scan_id=job.id if job.kind == "scan" else None, kind=job.kind,
                  status=job.status, error=scrub(job.error) if job.error else None, result=job.result,
                  progress=_progress(job, svc), gallery_version=job.gallery_version, attempts=job.attempts,
                  webhook=webhook, created_at=job.created_at, updated_at=job.updated_at,
                  finished_at=job.finished_at)


def own_job(job_id: str, who: Principal, svc: Service) -> JobRow:
    """The job if this key's principal submitted it; 404 otherwise (existence is not revealed)."""
    job = svc.jobs.get(job_id)
    if job is None or job.principal != who.name or job.kind not in KINDS_BY_ROLE.get(who.role, ()):
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
            summary="Status, progress (frames done / total) and result of a job you submitted")
def get_job(job_id: str = Path(max_length=64, pattern=ID_PATTERN),
            who: Principal = Depends(require("platform", "rights_holder")), svc: Service = Depends(service)) -> JobOut:
    return job_out(own_job(job_id, who, svc), svc)
