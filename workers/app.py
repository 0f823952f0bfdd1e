"""The one Celery app, configured from the settings: Redis broker and result backend, JSON only.

`celery -A workers.app worker` configures it from the environment; `likeness worker` configures it
from the CLI's settings (so --home applies) before starting. Delivery guarantees live here:
late acknowledgement, requeue when a worker dies, a visibility timeout for abandoned tasks,
publish retries while Redis is away, and time limits.
"""
from __future__ import annotations

import math

from celery import Celery

from workers.redis_state import redis_url
from workers.settings import Settings

app = Celery("likeness", include=["workers.tasks"])
_settings = Settings()


def restore_lock_s(restore_interval_s: float) -> int:
    """How long the lock around one restore of abandoned tasks lives: a restore takes milliseconds,
    so a few restore intervals is ample, and a dead holder delays recovery no longer than that."""
    return max(5, math.ceil(3 * restore_interval_s))


def celery_config(settings: Settings) -> dict:
    service = settings.service
    url = redis_url(settings)
    redis_options = {"socket_timeout": service.redis_timeout_s, "socket_connect_timeout": service.redis_timeout_s,
                     "retry_on_timeout": True, "health_check_interval": 10}
    return {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": service.queue,
        "result_expires": 24 * 3600,
        # A task is acknowledged after it ran; a worker that dies mid-task leaves it to another.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": service.task_time_limit_s,
        "task_soft_time_limit": service.soft_time_limit_s,
        # Every key under the deployment's prefix: several deployments (or test runs) share one Redis.
        "broker_transport_options": {
            "global_keyprefix": f"{service.key_prefix}:",
            "visibility_timeout": service.visibility_timeout_s,
            "unacked_restore_interval": service.restore_interval_s,
            "unacked_restore_throttle": 1,
            # The restore runs under a lock a worker SIGKILLed mid-restore never releases; kombu's
            # 5-minute default would hold every other worker's restore back that long.
            "unacked_mutex_expire": restore_lock_s(service.restore_interval_s),
            **redis_options,
        },
        "result_backend_transport_options": {"global_keyprefix": f"{service.key_prefix}:",
                                             "visibility_timeout": service.visibility_timeout_s},
        "redis_socket_timeout": service.redis_timeout_s,
        "redis_socket_connect_timeout": service.redis_timeout_s,
        "redis_retry_on_timeout": True,
        "redis_backend_health_check_interval": 10,
        "result_backend_always_retry": True,
        "result_backend_max_retries": max(3, math.ceil(service.publish_retry_s / 2)),
        # Keep sending through a short Redis outage instead of failing the caller.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": max(3, math.ceil(service.publish_retry_s / 2)),
                                      "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Tasks that run on while the broker is away finish; their redelivery is a no-op (idempotent).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_send_task_events": False,
        # Outcomes live in the job database; the backend keeps only failures, for operators.
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": True,
    }


def configure(settings: Settings) -> Celery:
    """Apply `settings` to the app; every later task and worker in this process uses them."""
    global _settings
    _settings = settings
    app.conf.update(celery_config(settings))
    return app


def sender(settings: Settings) -> Celery:
    """A separate app that only sends tasks by name (the API's): its own connections and settings,
    whatever the process's worker app is configured with."""
    client = Celery("likeness-sender", set_as_current=False)
    client.conf.update(celery_config(settings))
    return client


def settings() -> Settings:
    return _settings


configure(_settings)
