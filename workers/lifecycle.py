"""A worker's life cycle: migrate the database on start, load the models once in every pool process,
record final task failures on their job, and sweep for lost work."""
from __future__ import annotations

import logging
import os

from celery import bootsteps
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, worker_init, worker_process_init

from workers import dispatch
from workers.data import migrate
from workers.app import app, settings
from workers.recovery import sweep
from workers.service import context

log = logging.getLogger(__name__)


@worker_init.connect
def _migrate(**_) -> None:
    migrate.upgrade(settings().resolved_database_url())


@worker_process_init.connect
def _load_models(**_) -> None:
    """Prefork pool processes load models before their first task (solo pools load on first use)."""
    runtime = context().runtime
    runtime.gallery.refresh()
    log.info("models loaded in process %d (detector on %s, %d-d embeddings)", os.getpid(),
             runtime.detector.provider, runtime.embedder.dim)


def fail_job(job_id: str, reason: str) -> bool:
    """Fail an active job and, for a scan with a callback URL, send its `scan.failed` webhook (if
    the broker is away, the sweep sends it: the webhook is pending in the database)."""
    jobs = context().jobs
    if not jobs.fail(job_id, reason):
        return False
    job = jobs.get(job_id)
    if job is not None and job.webhook_status == "pending":
        try:
            dispatch.send(app, dispatch.WEBHOOK, job_id)
        except Exception as exc:  # broker errors come in many types; the sweep re-sends pending webhooks
            log.warning("job %s failed; its webhook was not sent (the sweep will send it): %s", job_id, exc)
    return True


def failure_reason(exception: BaseException) -> str:
    if isinstance(exception, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        return f"time limit of {settings().service.task_time_limit_s:.0f} s per task exceeded"
    return f"{type(exception).__name__}: {' '.join(str(exception).split())}"[:2000]


@task_failure.connect
def _record_failure(sender=None, exception=None, args=None, **_) -> None:
    """A task that finally failed (retries spent, time limit, a bug) fails its job, with the reason."""
    if not args:
        return
    jobs = context().jobs
    if sender.name == dispatch.WEBHOOK:
        jobs.webhook_result(args[0], "failed", failure_reason(exception))
    else:
        fail_job(args[0], f"{sender.name.split('.')[-1]}: {failure_reason(exception)}")


class Sweeper(bootsteps.StartStopStep):
    """Runs `recovery.sweep` on the worker's timer, in the main process."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._timer_ref = None

    def start(self, worker) -> None:
        self._timer_ref = worker.timer.call_repeatedly(settings().service.sweep_interval_s, self._sweep)

    def stop(self, worker) -> None:
        if self._timer_ref is not None:
            self._timer_ref.cancel()

    @staticmethod
    def _sweep() -> None:
        try:
            sweep(context(), app)
        except Exception:  # a failed sweep is retried next interval; it must never stop the worker
            log.exception("sweep for stale jobs failed")


app.steps["worker"].add(Sweeper)
