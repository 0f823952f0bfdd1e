"""The second line of defence for "a job is never lost": the database, not the broker, says what is
still to do. Jobs left queued or running for too long, and webhooks left pending (a scan's or a review
decision's), are sent again.

Redis hands abandoned tasks to another worker by itself (visibility timeout); this catches what a
broker cannot, such as a message lost with a Redis that kept no data, or a submission whose publish
failed after its job was stored. Sending twice is harmless: every task is idempotent.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import redis
from celery import Celery

from workers import dispatch
from workers.data.jobs import ACTIVE, StaleJob
from workers.service import Service

log = logging.getLogger(__name__)


def sweep(service: Service, app: Celery) -> list[str]:
    """Re-send stale work once per interval across all workers; returns the job ids re-sent."""
    config = service.settings.service
    lock = f"{config.key_prefix}:sweep"
    try:
        if not service.redis.set(lock, service.pid, nx=True, ex=max(1, int(config.sweep_interval_s))):
            return []
    except redis.RedisError:
        return []
    resent = []
    for job in service.jobs.stale(timedelta(seconds=config.stale_after_s)):
        service.jobs.touch(job.id)
        _resend(service, app, job)
        resent.append(job.id)
    if resent:
        log.warning("re-sent %d stale jobs: %s", len(resent), ", ".join(resent))
    for decision_id in service.reviews.stale_webhooks(timedelta(seconds=config.stale_after_s)):
        dispatch.send(app, dispatch.DECISION_WEBHOOK, decision_id)
        resent.append(f"decision-{decision_id}")
    return resent


def _resend(service: Service, app: Celery, job: StaleJob) -> None:
    """The next step of the job. A planned scan gets its pending segments (or its merge) again, not
    its planning, so a long queue never counts against the planner's attempts."""
    if job.status not in ACTIVE:
        dispatch.send(app, dispatch.WEBHOOK, job.id)
        return
    pending = service.jobs.pending_segments(job.id) if job.kind == "scan" else None
    if pending is None:
        dispatch.send_job(app, job.kind, job.id)
    elif pending:
        for number in pending:
            dispatch.send(app, dispatch.SEGMENT, job.id, number)
    else:
        dispatch.send(app, dispatch.MERGE, job.id)
