"""Task names and sending: the API and the sweeper send by name, without importing the tasks
(and with them the models' code)."""
from __future__ import annotations

from celery import Celery

SCAN = "likeness.scan"              # plan a scan job into segments
SEGMENT = "likeness.scan_segment"   # scan one time segment
MERGE = "likeness.merge_scan"       # join segments, decide, store the one report
ENROLL = "likeness.enroll"
REMOVE = "likeness.remove_identity"
WEBHOOK = "likeness.deliver_webhook"
DECISION_WEBHOOK = "likeness.deliver_decision_webhook"  # finding.decided, by decision id

JOB_TASKS = {"scan": SCAN, "enroll": ENROLL, "remove": REMOVE}
# Redis serves lower numbers first. Work already under way (segments, merges, webhooks: 0) goes
# before gallery changes (3) and before new scans (6), so a backlog delays jobs not yet begun
# rather than every job at once.
PRIORITY = {SCAN: 6, ENROLL: 3, REMOVE: 3}


def send(app: Celery, name: str, *args) -> None:
    """Publish one task; retries while Redis is away (see app.py), raises if it stays away.

    ignore_result: the job database holds outcomes, and a sender waiting on none must not
    subscribe to result notifications (one subscription per task sent, never released)."""
    app.send_task(name, args=list(args), ignore_result=True, priority=PRIORITY.get(name, 0))


def send_job(app: Celery, kind: str, job_id: str) -> None:
    send(app, JOB_TASKS[kind], job_id)
