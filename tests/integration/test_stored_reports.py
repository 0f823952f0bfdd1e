"""What the service keeps holds no server paths, and an enrollment leaves no staged photo behind.

- A scan's report, findings and job error are stored as clients see them: the video named as the
  platform gave it, no path under the media root (reports were rewritten only when served, so a copy
  of the database held every uploader's server path).
- The reference photos the API stages for an enrollment are deleted whatever the job's end: done,
  refused, or a failure nobody planned for (here the database refusing the likeness's row).
"""
from __future__ import annotations

import json

from sqlalchemy import text

from samples.clips import Scene, encode_video
from samples.photos import package_photo
from samples.services import wait_for
from workers.data.db import Database, FindingRow
from workers.data.jobs import JobStore


def _stored(db: Database, jobs: JobStore, scan_id: str) -> str:
    with db.session() as s:
        findings = [row.data for row in s.query(FindingRow).filter(FindingRow.scan_id == scan_id)]
    job = jobs.get(scan_id)
    return json.dumps([jobs.report(scan_id), findings, job.error, job.params.get("video_name")], ensure_ascii=False)


def test_reports_and_errors_are_stored_without_server_paths(make_stack, make_client, workers, photo):
    stack = make_stack()
    worker = workers(stack, "stored")
    client = make_client(stack)
    tube = client.key("platform", "tube")
    clip = stack.media_root / "platforms" / "tube" / "in" / "clip.mp4"
    clip.parent.mkdir(parents=True)
    encode_video(clip, [Scene(photo("yaoming.jpg"), 2.0, "pan")])
    with open(clip, "rb") as handle:
        uploaded = client.http.post("/v1/scans", headers=tube, data={"uploader": "u1"},
                                    files={"file": ("holiday.mp4", handle, "video/mp4")})
    by_path = client.http.post("/v1/scans", headers=tube, data={"uploader": "u2", "path": "in/clip.mp4"})
    broken = client.http.post("/v1/scans", headers=tube, data={"uploader": "u3"},
                              files={"file": ("notes.mp4", b"not a video at all" * 50, "video/mp4")})
    ids = {name: r.json()["id"] for name, r in (("upload", uploaded), ("path", by_path), ("broken", broken))}
    for job_id in ids.values():
        wait_for(lambda j=job_id: client.finished(j, tube), 120, "the scan")

    db = Database.open(stack.database_url)
    jobs = JobStore(db)
    roots = {str(stack.media_root), str(stack.media_root.resolve())}
    for name, job_id in ids.items():
        stored = _stored(db, jobs, job_id)
        assert not [root for root in roots if root in stored], (name, stored[:2000], worker.tail())
    failed = jobs.get(ids["broken"])
    assert failed.status == "failed" and "not a readable video container" in failed.error, failed.error
    assert "notes.mp4" in failed.error and "video.mp4" not in failed.error, failed.error  # as the platform named it
    assert jobs.report(ids["upload"])["video"]["path"] == "holiday.mp4"
    assert jobs.report(ids["path"])["video"]["path"] == "in/clip.mp4"
    # What the API serves is unchanged: the names the platform gave.
    served = {name: client.http.get(f"/v1/scans/{ids[name]}/report", headers=tube).json()
              for name in ("upload", "path")}
    assert served["upload"]["video"]["path"] == "holiday.mp4" and served["path"]["video"]["path"] == "in/clip.mp4"
    assert jobs.report(ids["upload"]) == served["upload"]


def _refuse_new_likenesses(db: Database) -> None:
    """A trigger that makes the database refuse every new likeness row: a real write failure."""
    with db.transaction() as s:
        if db.engine.dialect.name == "postgresql":
            s.execute(text("CREATE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN "
                           "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"))
            s.execute(text("CREATE TRIGGER refuse_identity BEFORE INSERT ON identities "
                           "FOR EACH ROW EXECUTE FUNCTION refuse_row()"))
        else:
            s.execute(text("CREATE TRIGGER refuse_identity BEFORE INSERT ON identities "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))


def test_staged_reference_photos_go_whatever_the_enrollment_ends_in(make_stack, make_client, workers):
    stack = make_stack()
    worker = workers(stack, "enroll")
    client = make_client(stack)
    nba = client.key("rights_holder", "nba")
    db = Database.open(stack.database_url)
    jobs = JobStore(db)

    def register(name: str, photo: str) -> tuple[dict, str]:
        with open(package_photo(photo), "rb") as handle:
            response = client.http.post("/v1/likenesses", headers=nba, data={"name": name, "policy": "no_use"},
                                        files=[("files", (photo, handle, "image/jpeg"))])
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        staged = jobs.get(job_id).params["files_dir"]
        return wait_for(lambda: client.finished(job_id, nba), 120, "the enrollment"), staged

    done, staged = register("Yao Ming", "yaoming.jpg")
    assert done["status"] == "done", (done, worker.tail())
    assert not stack.media_root.joinpath(staged).exists()

    _refuse_new_likenesses(db)
    failed, staged = register("Grace Hopper", "grace_hopper.jpg")
    assert failed["status"] == "failed" and "database error" in failed["error"], (failed, worker.tail())
    assert not stack.media_root.joinpath(staged).exists(), f"staged photos left in {staged}"
