"""Fixtures of the integration suite: a real Redis, real Celery workers, a real database.

Redis: LIKENESS_REDIS_URL when given (each test uses its own queue and key prefix), else a
redis-server of our own on a free port. Database: a scratch PostgreSQL database when
LIKENESS_DATABASE_URL points at a PostgreSQL server, else SQLite under each test's home.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from samples.photos import package_photo
from samples.services import RedisServer, ScratchPostgres, ServiceStack, WorkerProcess, is_postgres, wait_for
from workers.data import migrate
from workers.api.app import create_api
from workers.data.keys import KeyStore
from workers.data.db import Database
from workers.settings import Settings


@pytest.fixture(scope="session")
def machine_settings() -> Settings:
    """What the environment asks for (LIKENESS_REDIS_URL, LIKENESS_DATABASE_URL)."""
    return Settings()


@pytest.fixture(scope="session")
def redis_url(machine_settings, tmp_path_factory):
    if machine_settings.redis_url:
        yield machine_settings.redis_url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.kill()


@pytest.fixture
def make_stack(tmp_path, redis_url, machine_settings):
    """ServiceStack factory: its own migrated database (a scratch PostgreSQL database, or SQLite in
    its home) and its own queue and keys; `redis` overrides the Redis URL, `threads` sets the
    workers' onnxruntime threads per model, `worker_env` other LIKENESS_* settings of the workers."""
    scratch: list[ScratchPostgres] = []
    stacks: list[ServiceStack] = []

    def make(redis: str | None = None, threads: int = 0, worker_env: dict[str, str] | None = None,
             **overrides) -> ServiceStack:
        home = tmp_path / f"home{len(list(tmp_path.glob('home*')))}"
        if is_postgres(machine_settings.database_url):
            scratch.append(ScratchPostgres(machine_settings.database_url))
            database = scratch[-1].create()
        else:
            database = f"sqlite:///{home / 'likeness.db'}"
        stack = ServiceStack(home=home, database_url=database, redis_url=redis or redis_url, threads=threads,
                             worker_env=worker_env or {},
                             overrides={"progress_interval_s": 0.0, "webhook_allow_private": True, **overrides})
        migrate.upgrade(database)
        stacks.append(stack)
        return stack

    yield make
    for database in scratch:
        database.drop()
    for stack in stacks:
        stack.clean_redis()


@pytest.fixture
def workers(tmp_path):
    """Start worker processes with `workers(stack, name)`; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(stack: ServiceStack, name: str, concurrency: int = 1) -> WorkerProcess:
        worker = WorkerProcess(stack, name, tmp_path / "logs", concurrency)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


class Client:
    """An API client per key on one FastAPI app (the real ASGI stack, in process)."""

    def __init__(self, stack: ServiceStack):
        self.stack = stack
        self.settings = stack.settings()
        self.app = create_api(self.settings)
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.keys = KeyStore(Database.open(self.settings.resolved_database_url()))
        self.admin = {"X-API-Key": self.keys.issue("admin", "ops").key}

    def key(self, role: str, principal: str) -> dict[str, str]:
        response = self.http.post("/v1/keys", json={"role": role, "principal": principal}, headers=self.admin)
        assert response.status_code == 201, response.text
        return {"X-API-Key": response.json()["key"]}

    def job(self, job_id: str, headers: dict) -> dict:
        response = self.http.get(f"/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def finished(self, job_id: str, headers: dict) -> dict | None:
        job = self.job(job_id, headers)
        return job if job["status"] in ("done", "failed") else None

    def register(self, headers: dict, name: str, photo: str, **form) -> str:
        """Register a likeness from one package photo over HTTP; its id once a worker enrolled it."""
        with open(package_photo(photo), "rb") as handle:
            response = self.http.post("/v1/likenesses", headers=headers, data={"name": name, **form},
                                      files=[("files", (photo, handle, "image/jpeg"))])
        assert response.status_code == 202, response.text
        job = wait_for(lambda: self.finished(response.json()["id"], headers), 120, f"enrollment of {name}")
        assert job["status"] == "done", job
        return job["result"]["identity_id"]


@pytest.fixture
def make_client():
    clients: list[Client] = []

    def make(stack: ServiceStack) -> Client:
        clients.append(Client(stack))
        return clients[-1]

    yield make
    for client in clients:
        client.http.close()


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that answers 500 to the first `fail_first` calls, then 200."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.calls.append({"headers": dict(self.headers), "body": body})
        self.send_response(500 if len(server.calls) <= server.fail_first else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.calls, server.fail_first = [], 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/likeness"
    yield server
    server.shutdown()
