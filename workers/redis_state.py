"""Small shared state in Redis: scan progress and the gallery-version signal.

Both are hints. Progress is best effort (a Redis hiccup must not fail a scan), and the gallery
signal only tells a worker when to look at the database, which stays the source of truth.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from workers.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_PROGRESS_TTL_S = 24 * 3600
# Raise the announced version, never lower it: announcements from two workers may arrive out of order.
_RAISE_VERSION = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return current
"""


def redis_url(settings: Settings) -> str:
    return settings.redis_url or DEFAULT_REDIS_URL


def connect(settings: Settings) -> redis.Redis:
    timeout = settings.service.redis_timeout_s
    return redis.Redis.from_url(redis_url(settings), socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=10, retry_on_timeout=True, decode_responses=True)


@dataclass(frozen=True)
class SegmentProgress:
    done_s: float
    frames: int


class ProgressBoard:
    """Per job, per segment: seconds of video done and frames sampled, in one Redis hash."""

    def __init__(self, client: redis.Redis, prefix: str, min_interval_s: float = 0.5):
        self._client = client
        self._prefix = prefix
        self._min_interval_s = min_interval_s

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:progress:{job_id}"

    def reporter(self, job_id: str, segment: int) -> Callable[[float, float], None]:
        """A Scanner progress callback; called once per sampled frame, writes at most every interval."""
        frames = 0
        last_write = 0.0

        def report(done_s: float, _total_s: float) -> None:
            nonlocal frames, last_write
            frames += 1
            if time.monotonic() - last_write < self._min_interval_s:
                return
            last_write = time.monotonic()
            self.write(job_id, segment, SegmentProgress(max(0.0, done_s), frames))

        return report

    def write(self, job_id: str, segment: int, progress: SegmentProgress) -> None:
        try:
            with self._client.pipeline() as pipe:
                pipe.hset(self._key(job_id), str(segment), f"{progress.done_s:.3f}:{progress.frames}")
                pipe.expire(self._key(job_id), _PROGRESS_TTL_S)
                pipe.execute()
        except redis.RedisError as exc:
            log.debug("progress of %s not written: %s", job_id, exc)

    def read(self, job_id: str) -> dict[int, SegmentProgress] | None:
        """Progress per segment, or None when Redis cannot be reached."""
        try:
            raw = self._client.hgetall(self._key(job_id))
        except redis.RedisError:
            return None
        parsed = {}
        for segment, value in raw.items():
            done_s, frames = value.split(":")
            parsed[int(segment)] = SegmentProgress(float(done_s), int(frames))
        return parsed


class GallerySignal:
    """The newest gallery version, announced by whoever changed the gallery."""

    def __init__(self, client: redis.Redis, prefix: str):
        self._client = client
        self._key = f"{prefix}:gallery:version"
        self.channel = f"{prefix}:gallery:changed"
        self._raise = client.register_script(_RAISE_VERSION)

    def announce(self, version: int) -> None:
        try:
            self._raise(keys=[self._key, self.channel], args=[int(version)])
        except redis.RedisError as exc:  # workers still see the change in the database
            log.warning("gallery version %s not announced: %s", version, exc)

    def announced(self) -> int | None:
        """The announced version, or None when unknown (Redis away or restarted empty)."""
        try:
            value = self._client.get(self._key)
        except redis.RedisError:
            return None
        return int(value) if value is not None else None


def ensure_current(gallery, signal: GallerySignal) -> int:
    """Reload the gallery when the signal says it changed (or cannot say); returns the version used."""
    announced = signal.announced()
    if announced is None or announced != gallery.version:
        gallery.refresh()
    return gallery.version
