"""A long video is split into segments that several workers scan at once: a 2-minute video must
finish sooner with two worker processes than with one (same video, same settings)."""
from __future__ import annotations

import time

import pytest

from samples.services import copy_into, video, wait_for


@pytest.mark.slow
def test_two_minute_video_is_faster_with_two_workers(make_stack, make_client, workers):
    clip = video("yao-120s")
    seconds = {}
    for count in (1, 2):
        stack = make_stack(segment_s=30.0, threads=1)  # one worker process per core
        started = [workers(stack, f"w{count}-{i}") for i in range(count)]  # models loaded before timing
        client = make_client(stack)
        platform = client.key("platform", "tube")
        copy_into(stack.media_root, clip, "long.mp4")
        began = time.monotonic()
        job_id = client.http.post("/v1/scans", headers=platform,
                                  data={"uploader": "u", "path": "long.mp4"}).json()["id"]
        job = wait_for(lambda c=client, j=job_id, p=platform: c.finished(j, p), 1200,
                       f"the scan with {count} workers", 0.5)
        seconds[count] = time.monotonic() - began
        assert job["status"] == "done", job
        report = client.http.get(f"/v1/scans/{job_id}/report", headers=platform).json()
        assert report["video"]["duration_s"] == 120.0 and report["video"]["frames_sampled"] >= 240
        for worker in started:
            worker.stop()
    assert seconds[2] < seconds[1], seconds
