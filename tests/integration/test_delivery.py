"""Delivery guarantees against real failures: a worker SIGKILLed mid-scan, Redis stopped mid-run.

Both end the same way: every job finishes, and each has exactly one report.
"""
from __future__ import annotations

import threading
import time

import redis
from sqlalchemy import func, select

from samples.services import RedisServer, copy_into, video, wait_for
from workers.app import celery_config
from workers.data.db import Database, FindingRow, ScanRow, SegmentRow

# A worker that died leaves its task unacknowledged; Redis hands it on after this long.
FAST_RECOVERY = {"visibility_timeout_s": 6.0, "restore_interval_s": 1.0, "retry_backoff_max_s": 4.0}


def _reports(database_url: str, job_id: str) -> tuple[int, int]:
    """(reports, finding rows) stored for a job."""
    with Database.open(database_url).session() as s:
        reports = s.scalar(select(func.count()).select_from(ScanRow).where(ScanRow.id == job_id))
        findings = s.scalar(select(func.count()).select_from(FindingRow).where(FindingRow.scan_id == job_id))
    return reports, findings


def test_worker_killed_mid_scan_another_finishes(make_stack, make_client, workers):
    stack = make_stack(segment_s=60.0, **FAST_RECOVERY)
    first = workers(stack, "doomed")
    client = make_client(stack)
    platform = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-12s"), "platforms/tube/clip.mp4")
    job_id = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "clip.mp4"}).json()["id"]

    wait_for(lambda: (client.job(job_id, platform)["progress"] or {}).get("frames_done", 0) >= 3, 120,
             "the scan to be under way")
    first.kill()
    job = client.job(job_id, platform)
    assert job["status"] == "running" and job["progress"]["fraction"] < 1.0, job
    # The worker may have died mid-restore, holding the restore lock: as kombu takes it, with the
    # expiry the app configures. Recovery must still come within a few restore intervals.
    lock_s = celery_config(stack.settings())["broker_transport_options"]["unacked_mutex_expire"]
    redis.Redis.from_url(stack.redis_url).set(f"{stack.service_fields()['key_prefix']}:unacked_mutex",
                                              "doomed", ex=lock_s)

    second = workers(stack, "rescuer")
    job = wait_for(lambda: client.finished(job_id, platform), 180, "the second worker to finish the job")
    assert job["status"] == "done", (job, second.tail())
    with Database.open(stack.database_url).session() as s:
        segment = s.get(SegmentRow, (job_id, 0))
        assert segment.status == "done" and segment.attempts == 2  # the killed run, then the rescue
        assert s.scalar(select(func.count()).select_from(ScanRow)) == 1
    report = client.http.get(f"/v1/scans/{job_id}/report", headers=platform).json()
    assert _reports(stack.database_url, job_id) == (1, len(report["findings"]))
    assert report["video"]["frames_sampled"] == 24


def test_redis_stopped_mid_run_no_job_lost(make_stack, make_client, workers, tmp_path):
    server = RedisServer(tmp_path / "redis").start()  # ours alone: this test stops it
    try:
        stack = make_stack(redis=server.url, segment_s=4.0, **FAST_RECOVERY)
        worker = workers(stack, "outage")
        client = make_client(stack)
        platform = client.key("platform", "tube")
        names = ["yao-static-5s", "gdp-5s", "yao-zoom-out-5s"]
        for name in names:
            copy_into(stack.media_root, video(name), f"platforms/tube/{name}.mp4")
        submit = lambda name: client.http.post(  # noqa: E731
            "/v1/scans", headers=platform, data={"uploader": "u", "path": f"{name}.mp4"}).json()["id"]
        jobs = [submit(name) for name in names[:2]]

        wait_for(lambda: (client.job(jobs[0], platform)["progress"] or {}).get("frames_done", 0) >= 1, 120,
                 "the first scan to be under way")
        server.kill()
        assert client.job(jobs[0], platform)["status"] in ("queued", "running")  # the database still answers
        restart = threading.Timer(4.0, server.start)
        restart.start()
        started = time.monotonic()
        jobs.append(submit(names[2]))  # waits for Redis to come back (publish retries), then is queued
        assert time.monotonic() - started > 2.0
        restart.join()

        finished = [wait_for(lambda j=j: client.finished(j, platform), 240, f"job {j}") for j in jobs]
        assert [j["status"] for j in finished] == ["done"] * 3, worker.tail()
        assert [_reports(stack.database_url, j)[0] for j in jobs] == [1, 1, 1]
        with Database.open(stack.database_url).session() as s:
            assert s.scalar(select(func.count()).select_from(ScanRow)) == 3
    finally:
        server.kill()
