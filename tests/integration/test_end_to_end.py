"""The service end to end: API → Redis → a real Celery worker → database → API, on real videos.

A rights holder registers Yao Ming, a platform uploads a video of him, polls the job while it
runs, reads the report; the finding is visible to its owner only; the webhook (scan.finished,
for any verdict, and scan.failed) arrives after a failed first attempt, signed with its timestamp;
removal deletes the vectors and reference copies and later scans no longer find him.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from sqlalchemy import func, select

from gallery.gallery import Gallery
from gallery.store import GalleryStore, ReferenceRow
from samples.services import copy_into, video, wait_for
from workers.data.db import ScanRow, SegmentRow

SECRET = "integration-secret"


def _webhook_done(client, job_id, headers):
    return wait_for(lambda: (lambda j: j if j["webhook"] and j["webhook"]["status"] != "pending" else None)(
        client.job(job_id, headers)), 60, "webhook delivery")


def _signed(call) -> dict:
    """The call, checked as a receiver would: its signature covers `{timestamp}.{body}` and the
    timestamp is recent; with its body decoded as `event`."""
    timestamp = call["headers"]["X-Likeness-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    expected = "sha256=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + call["body"],
                                    hashlib.sha256).hexdigest()
    assert call["headers"]["X-Likeness-Signature"] == expected
    return {**call, "event": json.loads(call["body"])}


def test_register_upload_poll_report_remove(make_stack, make_client, workers, webhook_receiver):
    stack = make_stack(segment_s=4.0, webhook_secret=SECRET)  # an 8 s video: two segments
    worker = workers(stack, "e2e")
    client = make_client(stack)
    nba, studio = client.key("rights_holder", "nba"), client.key("rights_holder", "studio")
    platform = client.key("platform", "tube")

    yao_id = client.register(nba, "Yao Ming", "yaoming.jpg", policy="no_use")
    client.register(studio, "Crowd", "gdp.jpg", face="largest")

    clip = video("yao-8s")
    with open(clip, "rb") as handle:
        submitted = client.http.post("/v1/scans", headers=platform, files={"file": ("clip.mp4", handle, "video/mp4")},
                                     data={"uploader": "user-17", "callback_url": webhook_receiver.url})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    seen_running = []

    def poll():
        job = client.job(job_id, platform)
        if job["status"] == "running" and job["progress"]["frames_done"] > 0:
            seen_running.append(job["progress"])
        return job if job["status"] in ("done", "failed") else None

    job = wait_for(poll, 180, "the scan", interval=0.1)
    assert job["status"] == "done", (job, worker.tail())
    assert seen_running, "progress was never visible while the scan ran"
    assert all(p["frames_done"] <= p["frames_total"] + 2 and p["total_s"] == 8.0 for p in seen_running)
    assert job["progress"]["fraction"] == 1.0

    report = client.http.get(f"/v1/scans/{job_id}/report", headers=platform).json()
    assert report["verdict"]["action"] == "review"
    assert [f["identity"]["id"] for f in report["findings"]] == [yao_id]
    assert report["gallery_version"] == job["gallery_version"] == 2
    # Scanned as two segments, reported as one track: the track crossing 4.0 s was joined.
    assert [(t["start_s"], t["match"]["identity_id"]) for t in report["tracks"]] == [(0.0, yao_id)]
    assert report["tracks"][0]["end_s"] > 7.0 and report["video"]["frames_sampled"] == 16
    with client.keys.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.job_id == job_id)) == 2

    # Findings: the owner sees this one; another rights holder sees nothing of it.
    mine = client.http.get("/v1/findings", headers=nba).json()
    assert [(f["scan_id"], f["identity_id"], f["action"]) for f in mine] == [(job_id, yao_id, "review")]
    assert client.http.get("/v1/findings", headers=studio).json() == []
    assert client.http.get(f"/v1/jobs/{job_id}", headers=studio).status_code == 404
    assert client.http.get(f"/v1/scans/{job_id}/report", headers=studio).status_code == 403
    assert client.http.delete(f"/v1/likenesses/{yao_id}", headers=studio).status_code == 404
    assert [i["name"] for i in client.http.get("/v1/likenesses", headers=studio).json()] == ["Crowd"]

    # The webhook: refused once (500), delivered on the retry, signed with its timestamp.
    job = _webhook_done(client, job_id, platform)
    assert job["webhook"] == {"status": "delivered", "attempts": 2, "error": None}
    assert len(webhook_receiver.calls) == 2
    call = _signed(webhook_receiver.calls[-1])
    assert call["headers"]["X-Likeness-Event-Id"] == job_id
    assert call["event"]["event"] == "scan.finished" and call["event"]["verdict"]["action"] == "review"

    # The same upload again is the same job, not a second scan.
    with open(clip, "rb") as handle:
        again = client.http.post("/v1/scans", headers=platform, files={"file": ("other-name.mp4", handle)},
                                 data={"uploader": "user-17"})
    assert again.status_code == 200 and again.json()["id"] == job_id

    # Removal deletes rows, vectors and reference copies; later scans no longer find him.
    removal = client.http.delete(f"/v1/likenesses/{yao_id}", headers=nba)
    assert removal.status_code == 202, removal.text
    removed = wait_for(lambda: client.finished(removal.json()["id"], nba), 60, "removal")
    assert removed["status"] == "done" and removed["result"]["removed"] == yao_id
    store = GalleryStore.open(stack.database_url)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ReferenceRow).where(ReferenceRow.identity_id == yao_id)) == 0
    assert not (stack.home / "references" / yao_id).exists()
    gallery = Gallery(stack.home, store)
    gallery.refresh()
    assert len(gallery) == 1 and {gallery.identity(h.identity_id).name for h in gallery.search(
        [r.embedding for r in store.references()], 5)[0]} == {"Crowd"}
    assert client.http.get("/v1/likenesses", headers=nba).json() == []

    copy_into(stack.media_root, clip, "platforms/tube/incoming/clip.mp4")
    rescan = client.http.post("/v1/scans", headers={**platform, "Idempotency-Key": "rescan-after-removal"},
                              data={"uploader": "user-17", "path": "incoming/clip.mp4",
                                    "callback_url": webhook_receiver.url})
    assert rescan.status_code == 202, rescan.text
    rescanned = wait_for(lambda: client.finished(rescan.json()["id"], platform), 180, "the rescan")
    assert _webhook_done(client, rescanned["id"], platform)["webhook"]["status"] == "delivered"
    allowed = _signed(webhook_receiver.calls[-1])  # an allow verdict is called back too
    assert (allowed["event"]["event"], allowed["event"]["job_id"], allowed["event"]["verdict"]["action"]) == \
        ("scan.finished", rescanned["id"], "allow")
    report = client.http.get(f"/v1/scans/{rescanned['id']}/report", headers=platform).json()
    assert report["findings"] == [] and report["verdict"]["action"] == "allow"
    assert report["gallery_version"] == 3 and report["tracks"][0]["match"] is None
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ScanRow)) == 2


def test_input_that_can_never_succeed_fails_with_a_reason(make_stack, make_client, workers, webhook_receiver):
    stack = make_stack(webhook_secret=SECRET)
    workers(stack, "bad-input")
    client = make_client(stack)
    platform = client.key("platform", "tube")
    webhook_receiver.fail_first = 0
    response = client.http.post("/v1/scans", headers=platform,
                                data={"uploader": "u", "callback_url": webhook_receiver.url},
                                files={"file": ("notes.mp4", b"only text, not a video\n" * 50, "video/mp4")})
    assert response.status_code == 202
    job = wait_for(lambda: client.finished(response.json()["id"], platform), 60, "the failed job")
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "not a readable video container" in job["error"]
    report = client.http.get(f"/v1/scans/{job['id']}/report", headers=platform)
    assert report.status_code == 409 and report.json()["error"]["reason"].startswith("scan failed:")

    # The platform hears of the failure too: scan.failed, with the error as the API shows it.
    assert _webhook_done(client, job["id"], platform)["webhook"] == {"status": "delivered", "attempts": 1,
                                                                     "error": None}
    [call] = webhook_receiver.calls
    event = _signed(call)["event"]
    assert event == {"event": "scan.failed", "job_id": job["id"], "uploader": "u", "error": job["error"],
                     "job": f"/v1/jobs/{job['id']}"}
