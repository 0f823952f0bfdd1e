"""A long video is split into segments that several workers scan at once: with two worker
processes, both scan segments of the same job, and the one report covers the whole video.

Which worker ran which task is read from the workers' own logs (Celery logs every task it
finishes with the task's name); the stack is fresh and gets this one job, so every segment task
in those logs is one of its segments. How much sooner two workers finish is measured by
benchmarks/workers.py, not asserted here.
"""
from __future__ import annotations

import pytest

from samples.services import copy_into, video, wait_for
from workers import dispatch
from workers.scans.segments import plan_segments

SEGMENT_S = 30.0


@pytest.mark.slow
def test_both_workers_scan_segments_of_one_two_minute_video(make_stack, make_client, workers):
    stack = make_stack(segment_s=SEGMENT_S, threads=1)  # one worker process per core
    started = [workers(stack, f"parallel-{i}") for i in range(2)]
    client = make_client(stack)
    platform = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-120s"), "platforms/tube/long.mp4")
    job_id = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "long.mp4"}).json()["id"]
    job = wait_for(lambda: client.finished(job_id, platform), 1200, "the scan with 2 workers", 0.5)
    assert job["status"] == "done", (job, *(w.tail() for w in started))
    report = client.http.get(f"/v1/scans/{job_id}/report", headers=platform).json()
    assert report["video"]["duration_s"] == 120.0 and report["video"]["frames_sampled"] >= 240

    segments = plan_segments(120.0, SEGMENT_S, stack.settings().scan.sampling.interval_s)
    finished = f"Task {dispatch.SEGMENT}["
    done_by = {w.name: sum(finished in line and " succeeded in " in line
                           for line in w.log.read_text(errors="replace").splitlines()) for w in started}
    assert len(segments) == 4
    assert sum(done_by.values()) == len(segments), done_by
    assert all(count >= 1 for count in done_by.values()), done_by
