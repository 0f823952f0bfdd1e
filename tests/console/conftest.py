"""The console's stack, built once for the folder: a real Redis, a real Celery worker process, a real
database, the app `likeness serve` runs (uvicorn on a free port), a webhook receiver, and a real
scan of a real video whose finding waits for review (Yao Ming registered with policy no_use,
scanned as an unauthorised uploader's video: action review).

Two scans of Yao Ming's clips by two uploaders: one for the API's decision test, one for the browser."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn

from samples.photos import package_photo
from samples.services import RedisServer, ServiceStack, WorkerProcess, free_port, video, wait_for
from workers.api.app import create_api
from workers.data import migrate
from workers.data.db import Database
from workers.data.keys import KeyStore
from workers.settings import Settings

SECRET = "console-secret"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.calls.append({"headers": dict(self.headers), "body": body, "event": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@dataclass
class ConsoleStack:
    url: str                       # the app's base URL
    stack: ServiceStack
    keys: dict[str, str]           # principal -> API key
    hooks: ThreadingHTTPServer
    worker: WorkerProcess
    yao_id: str = ""
    scans: dict[str, str] = field(default_factory=dict)  # uploader -> scan id

    def api(self, principal: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.keys[principal]}, timeout=30)


def _serve(app, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_for(lambda: server.started, 30, "uvicorn to start", interval=0.05)
    return server


@pytest.fixture(scope="package")
def console_stack(tmp_path_factory) -> ConsoleStack:
    machine = Settings()
    root = tmp_path_factory.mktemp("console")
    redis_server = None
    redis_url = machine.redis_url
    if not redis_url:
        redis_server = RedisServer(root / "redis").start()
        redis_url = redis_server.url
    home = root / "home"
    stack = ServiceStack(home=home, database_url=f"sqlite:///{home / 'likeness.db'}", redis_url=redis_url,
                         overrides={"progress_interval_s": 0.0, "webhook_allow_private": True,
                                    "webhook_secret": SECRET, "console_secret": "console-cookie-secret"})
    migrate.upgrade(stack.database_url)
    store = KeyStore(Database.open(stack.database_url))
    keys = {name: store.issue(role, name).key for role, name in (
        ("platform", "tube"), ("platform", "othertube"), ("rights_holder", "nba"), ("rights_holder", "studio"))}
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    hooks.calls = []
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    worker = WorkerProcess(stack, "console", root / "logs").start()
    port = free_port()
    server = _serve(create_api(stack.settings()), port)
    env = ConsoleStack(f"http://127.0.0.1:{port}", stack, keys, hooks, worker)
    try:
        _scan(env)
        yield env
    finally:
        server.should_exit = True
        worker.stop()
        hooks.shutdown()
        stack.clean_redis()
        if redis_server is not None:
            redis_server.kill()


def _scan(env: ConsoleStack) -> None:
    """Register Yao Ming (no_use) as nba, then scan two clips of him as two uploaders of `tube`."""
    nba, tube = env.api("nba"), env.api("tube")
    with open(package_photo("yaoming.jpg"), "rb") as handle:
        job = nba.post("/v1/likenesses", data={"name": "Yao Ming", "policy": "no_use"},
                       files=[("files", ("yaoming.jpg", handle, "image/jpeg"))]).json()
    done = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        nba.get(f"/v1/jobs/{job['job_id']}").json()), 120, "Yao Ming's registration")
    assert done["status"] == "done", (done, env.worker.tail())
    env.yao_id = done["result"]["identity_id"]
    callback = f"http://127.0.0.1:{env.hooks.server_address[1]}/hooks"
    # Two clips, so the two findings' evidence faces differ (an image a likeness has is not added twice).
    for uploader, clip in (("user-17", video("yao-static-5s")), ("user-18", video("yao-zoom-out-5s"))):
        with open(clip, "rb") as handle:
            submitted = tube.post("/v1/scans", files={"file": ("interview.mp4", handle, "video/mp4")},
                                  data={"uploader": uploader, "callback_url": callback})
        assert submitted.status_code == 202, submitted.text
        env.scans[uploader] = submitted.json()["scan_id"]
    started = time.monotonic()
    for uploader, scan_id in env.scans.items():
        job = wait_for(lambda s=scan_id: (lambda j: j if j["status"] in ("done", "failed") else None)(
            tube.get(f"/v1/jobs/{s}").json()), 180, f"the scan of {uploader}")
        assert job["status"] == "done" and job["result"]["verdict"] == "review", (job, env.worker.tail())
    print(f"two scans done in {time.monotonic() - started:.1f} s")


def finding_of(env: ConsoleStack, uploader: str) -> dict:
    """The queue item (the API's) of the scan `uploader`'s video produced."""
    page = env.api("tube").get("/v1/reviews", params={"uploader": uploader}).json()
    assert len(page["items"]) == 1, page
    return page["items"][0]


def chromium() -> Path:
    """Debian's chromium; its absence is a failure (apt-get install chromium), never a skip."""
    path = Path("/usr/bin/chromium")
    assert path.is_file(), "the console's browser tests need Debian's chromium: apt-get install -y chromium"
    return path
