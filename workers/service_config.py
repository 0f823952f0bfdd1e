"""Tunables of the distributed service (workers, API, webhooks), as bounded and described fields.

Lives under `Settings.service` (env `LIKENESS_SERVICE__<FIELD>`). The embedded `likeness scan`
never reads any of it.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator


class ServiceConfig(BaseModel):
    media_root: Path | None = Field(
        None, description="Directory every worker and API server sees (shared storage): uploads are "
        "written under it and submitted paths must lie inside it. Default: <home>/media.")
    queue: str = Field("likeness", min_length=1, description="Celery queue all tasks go to.")
    key_prefix: str = Field("likeness", min_length=1,
                            description="Prefix of every Redis key: Celery's queues, unacknowledged tasks and "
                            "results, progress, the gallery signal, locks. Deployments sharing a Redis differ here.")

    # -- segments ------------------------------------------------------------------------------
    segment_s: float = Field(
        30.0, ge=2.0, le=3600.0, description="Target length of a time segment scanned by one task. "
        "Shorter spreads a long video over more workers but adds a probe and a model warm-up per "
        "segment; videos shorter than 1.5 segments are scanned whole.")

    # -- delivery guarantees -------------------------------------------------------------------
    task_time_limit_s: float = Field(
        900.0, ge=5.0, description="Hard limit of one task; the soft limit (a clean failure) comes "
        "30 s or 10 % earlier. Segments keep scans far below it.")
    visibility_timeout_s: float = Field(
        1800.0, ge=2.0, description="Seconds after which Redis hands a task that was never acknowledged "
        "(its worker died) to another worker. Keep it above the task time limit, or a slow task "
        "runs twice (harmless, since tasks are idempotent, but wasteful).")
    restore_interval_s: float = Field(
        10.0, gt=0.0, description="How often a worker looks for tasks abandoned by dead workers.")
    max_attempts: int = Field(
        4, ge=1, le=100, description="A job or segment started this many times without finishing "
        "(worker killed each time, hard time limit) fails instead of being retried forever.")
    max_retries: int = Field(8, ge=0, le=100, description="Retries of a task on transient faults.")
    retry_backoff_max_s: float = Field(60.0, gt=0.0, description="Longest wait between two retries.")
    publish_retry_s: float = Field(
        30.0, ge=0.0, description="How long sending a task keeps retrying while Redis is away.")
    redis_timeout_s: float = Field(5.0, gt=0.0, description="Socket timeout of every Redis call.")
    sweep_interval_s: float = Field(
        60.0, gt=0.0, description="How often one worker re-sends jobs and webhooks stuck in the database "
        "(a message lost with a Redis that kept no data).")
    stale_after_s: float = Field(
        3600.0, gt=0.0, description="A queued or running job unchanged this long is sent again.")
    progress_interval_s: float = Field(0.5, ge=0.0, description="Least time between two progress writes.")

    # -- API -----------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Interface `likeness serve` binds to.")
    api_port: int = Field(8000, ge=1, le=65535)
    max_upload_bytes: int = Field(2 << 30, gt=0, description="Largest video accepted in one upload.")
    max_reference_bytes: int = Field(20 << 20, gt=0, description="Largest reference image.")
    max_references: int = Field(20, ge=1, le=200, description="Most reference images in one registration.")

    # -- data protection -----------------------------------------------------------------------
    scan_retention_days: float | None = Field(
        None, gt=0.0, description="Scans that finished longer ago than this many days are deleted for good "
        "(the API's copy of the upload, report, findings, segment embeddings, evidence images) by "
        "`likeness purge`, run from cron. None: kept until the platform deletes them; deleting cannot "
        "be undone and how long scan records must be kept is the operator's legal call, so there is no "
        "default period.")

    # -- webhooks ------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        None, description="Signs callback bodies (HMAC-SHA256, header X-Likeness-Signature).")
    webhook_timeout_s: float = Field(10.0, gt=0.0)
    webhook_max_retries: int = Field(8, ge=0, le=50)
    webhook_allow_private: bool = Field(
        False, description="Allow callbacks to loopback and private addresses (tests, single-host setups); "
        "off, since a callback URL is otherwise a way into the internal network.")

    # -- console -------------------------------------------------------------------------------
    console_secret: SecretStr | None = Field(
        None, description="Signs the review console's session cookies. None: a random secret per API process, "
        "so sessions end when the process restarts and do not carry across processes: set it when several "
        "API processes serve the console.")
    console_session_s: float = Field(
        8 * 3600.0, gt=0.0, le=30 * 24 * 3600.0, description="How long a console sign-in lasts (seconds).")

    @model_validator(mode="after")
    def _visibility_above_limit(self) -> ServiceConfig:
        if self.visibility_timeout_s < self.retry_backoff_max_s:
            raise ValueError("visibility_timeout_s must exceed retry_backoff_max_s: a retry waiting "
                             "longer than it would be delivered twice")
        return self

    @property
    def soft_time_limit_s(self) -> float:
        return max(self.task_time_limit_s - 30.0, self.task_time_limit_s * 0.9)

    def resolved_media_root(self, home: Path) -> Path:
        return (self.media_root or home / "media").resolve()
