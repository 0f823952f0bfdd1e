"""Celery tasks: thin wrappers that move a job one step, carrying only job ids (never pixels).

A scan is planned into time segments (`scan`), each segment is scanned by whichever worker takes
it (`scan_segment`), and the last segment to finish sends `merge_scan`, which joins the tracks,
decides against one gallery version and stores the one report. Every task is idempotent: the
database records each step once, so a redelivered or duplicated task finds its work done.
"""
from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseBusy

import workers.lifecycle  # noqa: F401  (the worker's hooks: migrations, model loading, sweeper)
from workers.lifecycle import fail_job
from pipeline.provenance.reader import read_provenance
from pipeline.report import build_report
from pipeline.video import VideoInputError, probe
from workers import dispatch
from workers.scans import evidence, codec, withdrawal
from workers.scans import accounts, posts
from workers.app import app, settings
from workers.data.keys import scan_uploader
from workers.data.db import JobRow
from workers.enrollment import register_character, register_person
from workers.data.jobs import ACTIVE, JobFailed, client_error
from workers.redis_state import ensure_current
from workers.scans.segments import merge_segments, plan_segments
from workers.scans.server_paths import without_server_paths
from workers.service import Service, context
from workers.scans.webhooks import WebhookError, WebhookRefused, body, decision_body, deliver, failed_body

log = logging.getLogger(__name__)

_config = settings().service
TRANSIENT = (DatabaseBusy, redis.ConnectionError, redis.TimeoutError, BrokerError, ConnectionError, TimeoutError)
RETRYING = {"bind": True, "autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_jitter": True,
            "retry_backoff_max": int(_config.retry_backoff_max_s), "max_retries": _config.max_retries}


def _begin(service: Service, job_id: str) -> JobRow | None:
    """Count a start of the job; fail it once it has been started too often without finishing."""
    job = service.jobs.start(job_id)
    if job is not None and job.attempts > service.settings.service.max_attempts:
        fail_job(job_id, f"gave up after {job.attempts - 1} starts that never finished "
                         "(worker lost or time limit each time)")
        return None
    return job


def _run_job(service: Service, job_id: str, step) -> None:
    """Run one step; input that can never succeed fails the job instead of being retried."""
    try:
        step()
    except (VideoInputError, JobFailed) as exc:
        fail_job(job_id, " ".join(str(exc).split()))


# -- scans ---------------------------------------------------------------------------------------

@app.task(name=dispatch.SCAN, **RETRYING)
def scan(self, job_id: str) -> None:
    """Probe the upload, record its segments and send one task per segment still to do."""
    service = context()
    job = _begin(service, job_id)
    if job is None:
        return
    if posts.is_post(job):  # a post: its items scanned and decided in this one task (scans/posts.py)
        def post() -> None:
            if posts.run(service, job):
                dispatch.send(app, dispatch.WEBHOOK, job_id)

        _run_job(service, job_id, post)
        return

    def plan() -> None:
        info = probe(Path(job.params["video"]), service.settings.scan.sampling)
        segments = plan_segments(info.duration_s, service.settings.service.segment_s,
                                 service.settings.scan.sampling.interval_s)
        pending = service.jobs.plan(job_id, info.duration_s, segments)
        for number in pending:
            dispatch.send(app, dispatch.SEGMENT, job_id, number)
        if not pending:
            dispatch.send(app, dispatch.MERGE, job_id)

    _run_job(service, job_id, plan)


@app.task(name=dispatch.SEGMENT, **RETRYING)
def scan_segment(self, job_id: str, number: int) -> None:
    """Observe one segment (decisions wait for the merge) and store its tracks and character samples."""
    service = context()
    segment = service.jobs.start_segment(job_id, number)
    if segment is None:  # done before (a redelivery): make sure the merge was sent
        if service.jobs.segment_payloads(job_id) is not None:
            dispatch.send(app, dispatch.MERGE, job_id)
        return
    if segment.attempts > service.settings.service.max_attempts:
        fail_job(job_id, f"segment {number} gave up after {segment.attempts - 1} starts that never "
                         "finished (worker lost or time limit each time)")
        return
    job = service.jobs.get(job_id)

    def run() -> None:
        report = service.progress.reporter(job_id, number)
        gallery = service.runtime.gallery  # what the merge will search, as of now: the face-swap probe's tracks
        ensure_current(gallery, service.signal)
        observation = service.runtime.scanner.observe(Path(job.params["video"]), progress=report,
                                                      start_s=segment.start_s, end_s=segment.end_s, gallery=gallery)
        if service.jobs.finish_segment(job_id, number, codec.encode(observation)):
            dispatch.send(app, dispatch.MERGE, job_id)

    _run_job(service, job_id, run)


@app.task(name=dispatch.MERGE, **RETRYING)
def merge_scan(self, job_id: str) -> None:
    """Join the segments, decide against the current gallery and store the report once."""
    service = context()
    job = service.jobs.get(job_id)
    if job is None:
        return
    if job.status not in ACTIVE:
        if job.webhook_status == "pending":  # stored, but the webhook may not have been sent
            dispatch.send(app, dispatch.WEBHOOK, job_id)
        return
    payloads = service.jobs.segment_payloads(job_id)
    if payloads is None:  # another segment's completion will send the merge again
        return

    def merge() -> None:
        runtime = service.runtime
        path = Path(job.params["video"])
        info = probe(path, service.settings.scan.sampling)
        gallery = runtime.gallery
        ensure_current(gallery, service.signal)
        uploader = scan_uploader(job.principal, job.params["uploader"])  # never the platform's bare id
        result = merge_segments(info, read_provenance(path), [codec.decode(p) for p in payloads],
                                runtime.scanner, gallery, uploader, bool(job.params.get("declared_ai", False)))
        report = build_report(result)
        evidence.attach_images(report, path, service.media_root, job_id)  # before storing: one report, whole
        webhook = bool(job.params.get("callback_url"))  # scan.finished, whatever the verdict
        kept = without_server_paths(report, job.params, service.media_root)  # the database keeps no server path
        if not service.jobs.complete_scan(job, kept, kept["findings"], webhook):
            stored = service.jobs.report(job_id) or {"findings": []}
            evidence.keep_only(service.media_root, job_id, {f["identity"]["id"] for f in stored["findings"]})
            return
        accounts.record(service, job, report, [])  # the uploader's history (scans/accounts.py)
        for finding in report["findings"]:  # removed while this merge ran: its removal may have missed these
            identity_id = finding["identity"]["id"]
            if service.gallery_store.identity(identity_id) is None:
                withdrawal.withdraw(service, identity_id, withdrawal.REMOVED)
            elif withdrawal.lost_an_actor(service, finding):
                withdrawal.withdraw(service, identity_id, withdrawal.ACTOR_REMOVED)
        if webhook:
            dispatch.send(app, dispatch.WEBHOOK, job_id)

    _run_job(service, job_id, merge)


# -- gallery -------------------------------------------------------------------------------------

@app.task(name=dispatch.ENROLL, **RETRYING)
def enroll(self, job_id: str) -> None:
    """Register a likeness from the staged references (a character through the character enrollment
    the CLI uses); the new gallery version is announced."""
    service = context()
    job = _begin(service, job_id)
    if job is None:  # finished before, or given up on: its references are not needed again
        _discard_staged(service.jobs.get(job_id))
        return
    register = register_character if job.params["kind"] == "character" else register_person

    def run() -> None:
        runtime = service.runtime
        result = register(runtime, job)
        runtime.gallery.refresh()
        service.signal.announce(runtime.gallery.version)
        service.jobs.finish(job_id, result, runtime.gallery.version)

    retried = False
    try:
        _run_job(service, job_id, run)
    except TRANSIENT:  # Celery runs the task again, which reads the references again, until retries run out
        retried = self.max_retries is None or self.request.retries < self.max_retries
        raise
    finally:
        if not retried:  # registered, refused, or failed in a way nobody planned for
            _discard_staged(job)


def _discard_staged(job: JobRow | None) -> None:
    """Delete the reference files the API staged for an enrollment job."""
    if job is not None and (job.params or {}).get("files_dir"):
        shutil.rmtree(job.params["files_dir"], ignore_errors=True)


@app.task(name=dispatch.REMOVE, **RETRYING)
def remove_identity(self, job_id: str) -> None:
    """Delete a likeness for good (rows, vectors, reference copies, evidence images of findings
    about it, and of findings about the characters a person plays); removing it twice is a no-op."""
    service = context()
    job = _begin(service, job_id)
    if job is None:
        return
    gallery = service.runtime.gallery
    identity_id = job.params["identity_id"]
    characters = service.gallery_store.characters_played_by(identity_id, job.principal)
    withdrawal.withdraw_characters(service, characters)  # first: a retry after the removal finds no cast
    try:  # through the character gallery, so a character's image vectors go at once too
        service.runtime.character_gallery.remove(gallery, identity_id, job.principal)
        result = {"removed": identity_id}
    except KeyError:
        result = {"removed": identity_id, "already_removed": True}
    result["evidence_scans_cleared"] = len(withdrawal.withdraw(service, identity_id, withdrawal.REMOVED))
    # again: a merge may have stored findings about those characters since the first pass
    result["character_evidence_scans_cleared"] = len(withdrawal.withdraw_characters(service, characters))
    gallery.refresh()
    service.signal.announce(gallery.version)
    service.jobs.finish(job_id, result, gallery.version)


# -- webhooks ------------------------------------------------------------------------------------

def _post(task, url: str, data: bytes, event_id: str, record) -> None:
    """POST one webhook and `record(status, error)` the attempt; a transient failure retries the
    task with backoff until `max_retries`, a refusal gives up at once."""
    config = context().settings.service
    secret = config.webhook_secret.get_secret_value() if config.webhook_secret else None
    try:
        deliver(url, data, event_id, secret, config.webhook_timeout_s, config.webhook_allow_private)
    except WebhookRefused as exc:
        record("failed", str(exc))
        return
    except WebhookError as exc:
        final = task.request.retries >= task.max_retries
        record("failed" if final else "pending", str(exc))
        if final:
            return
        delay = min(config.retry_backoff_max_s, 2 ** task.request.retries) * random.uniform(0.5, 1.0)
        raise task.retry(exc=exc, countdown=delay) from exc
    record("delivered", None)


@app.task(name=dispatch.WEBHOOK, bind=True, max_retries=_config.webhook_max_retries,
          autoretry_for=(DatabaseBusy,), retry_backoff=1, retry_jitter=True)
def deliver_webhook(self, job_id: str) -> None:
    """POST the verdict (scan.finished) or the error (scan.failed) to the job's callback URL; retried
    with backoff until it is taken."""
    service = context()
    job = service.jobs.get(job_id)
    if job is None or job.webhook_status != "pending":
        return
    if job.status == "failed":
        data = failed_body(job_id, job.params.get("uploader"), client_error(job.error or ""))
    else:
        report = service.jobs.report(job_id)
        if report is None:  # deleted meanwhile: nothing left to tell
            service.jobs.webhook_result(job_id, "failed", "the scan was deleted before its webhook went out")
            return
        account = accounts.summary(service, job.principal, job.params["uploader"], service.settings.ladder) \
            if job.params.get("uploader") else None
        data = body(job_id, job.params.get("uploader"), report, account)
    _post(self, job.params["callback_url"], data, job_id,
          lambda status, error: service.jobs.webhook_result(job_id, status, error))


@app.task(name=dispatch.DECISION_WEBHOOK, bind=True, max_retries=_config.webhook_max_retries,
          autoretry_for=(DatabaseBusy,), retry_backoff=1, retry_jitter=True)
def deliver_decision_webhook(self, decision_id: int) -> None:
    """POST a reviewer's decision (finding.decided) to the callback URL of the finding's scan."""
    service = context()
    pending = service.reviews.pending_webhook(decision_id)
    if pending is None:
        return
    decision, url = pending
    job = service.jobs.get(decision.scan_id)
    data = decision_body(decision, job.params.get("uploader") if job else None)
    _post(self, url, data, f"decision-{decision_id}",
          lambda status, error: service.reviews.webhook_result(decision_id, status, client_error(error) if error
                                                               else None))
