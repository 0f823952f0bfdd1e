"""The service commands as a user runs them: `likeness migrate`, `likeness issue-key`, and
`likeness worker` with `likeness serve` as real processes scanning a video end to end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx

from samples.services import ROOT, copy_into, free_port, video, wait_for


def _likeness(stack, *argv: str, **popen):
    command = [sys.executable, "-m", "workers.cli", *argv]
    if popen:
        return subprocess.Popen(command, cwd=ROOT, env=stack.env(), start_new_session=True, **popen)
    return subprocess.run(command, cwd=ROOT, env=stack.env(), capture_output=True, text=True, timeout=120)


def _stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def test_migrate_and_issue_key(make_stack):
    stack = make_stack()
    migrated = _likeness(stack, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["revision"]
    issued = _likeness(stack, "issue-key", "--role", "platform", "--principal", "tube")
    assert issued.returncode == 0, issued.stderr
    assert json.loads(issued.stdout)["key"].startswith("lk_")
    refused = _likeness(stack, "issue-key", "--role", "root", "--principal", "x")
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "role must be one of" in refused.stderr
    colon = _likeness(stack, "issue-key", "--role", "rights_holder", "--principal", "tube:nba")
    assert colon.returncode != 0 and colon.stderr.count("\n") == 1 and "must not contain ':'" in colon.stderr


def test_worker_and_serve_commands(make_stack, tmp_path):
    stack = make_stack()
    port = free_port()
    worker_log, api_log = tmp_path / "worker.log", tmp_path / "api.log"
    worker = _likeness(stack, "worker", "--name", "cli", "--pool", "solo",
                       stdout=open(worker_log, "ab"), stderr=subprocess.STDOUT)
    api = _likeness(stack, "serve", "--port", str(port), stdout=open(api_log, "ab"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                return httpx.get(f"{base}/v1/health", timeout=2).json() == {"database": "ok", "redis": "ok"}
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the API server")
        wait_for(lambda: " ready." in worker_log.read_text(), 60, "the worker")
        issued = _likeness(stack, "issue-key", "--role", "platform", "--principal", "tube")
        key = {"X-API-Key": json.loads(issued.stdout)["key"]}
        copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/clip.mp4")
        job = httpx.post(f"{base}/v1/scans", headers=key, data={"uploader": "u", "path": "clip.mp4"}).json()
        done = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
            httpx.get(f"{base}/v1/jobs/{job['id']}", headers=key).json()), 120, "the scan")
        assert done["status"] == "done", worker_log.read_text()[-3000:]
    finally:
        _stop(api)
        _stop(worker)
