"""What one service process holds (a worker process or an API server), built once from the settings.

Models are loaded only when a task first needs them (or when a worker process starts, see
lifecycle.py), and once per process: `context()` hands every task in a process the same one. The
jobs, keys, gallery store and the runtime's gallery all use the process's one engine (`shared_engine`).
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from gallery.store import GalleryStore
from workers.data.keys import KeyStore
from workers.data.db import Database
from workers.data.jobs import JobStore
from workers.data.reviews import ReviewStore
from workers.data.uploaders import UploaderStore
from workers.redis_state import GallerySignal, ProgressBoard, connect
from workers.runtime import Runtime
from workers.settings import Settings


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.pid = os.getpid()
        self.db = Database.open(settings.resolved_database_url())
        self.jobs = JobStore(self.db)
        self.keys = KeyStore(self.db)
        self.reviews = ReviewStore(self.db)
        self.uploaders = UploaderStore(self.db)  # uploader history and posted pictures' hashes
        self.gallery_store = GalleryStore(self.db.engine)  # reads and PATCH edits; registrations are tasks
        self.redis = connect(settings)
        prefix = settings.service.key_prefix
        self.progress = ProgressBoard(self.redis, prefix, settings.service.progress_interval_s)
        self.signal = GallerySignal(self.redis, prefix)

    @cached_property
    def runtime(self) -> Runtime:
        """Models and gallery; only worker processes ever touch this."""
        return Runtime(self.settings)

    @property
    def media_root(self) -> Path:
        return self.settings.service.resolved_media_root(self.settings.home)


_service: Service | None = None


def context() -> Service:
    """This worker process's Service, on the Celery app's settings; a process forked from one that
    had one gets its own (no sockets shared across processes)."""
    global _service
    if _service is None or _service.pid != os.getpid():
        from workers.app import settings
        _service = Service(settings())
    return _service
