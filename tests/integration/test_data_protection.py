"""Scan data goes for good when it should: a platform deletes its scan (upload, report, findings,
segment embeddings, evidence images; never a file it submitted by path), `likeness purge` deletes
scans past the retention period, and removing a person withdraws the evidence images of the
characters they play (those images may show the actor's face)."""
from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import func, select

from gallery.store import CharacterCastRow, IdentityRow
from samples.clips import Scene, encode_video
from samples.services import ROOT, wait_for
from workers.scans import withdrawal
from workers.data.db import Database, FindingRow, ScanRow, SegmentRow
from workers.scans.evidence import image_path, image_url
from workers.data.jobs import JobStore
from workers.service import Service


def _rows(db: Database, scan_id: str) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(table).where(column == scan_id)) for table, column in
                     ((ScanRow, ScanRow.id), (FindingRow, FindingRow.scan_id), (SegmentRow, SegmentRow.job_id)))


def _purge(stack, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", "purge", *argv], cwd=ROOT, env={**stack.env(), **env},
                          capture_output=True, text=True, timeout=120)


def test_a_platform_deletes_its_scan_and_old_scans_are_purged(make_stack, make_client, workers, photo):
    stack = make_stack()
    worker = workers(stack, "deletion")
    client = make_client(stack)
    nba = client.key("rights_holder", "nba")
    tube, vimeo = client.key("platform", "tube"), client.key("platform", "vimeo")
    yao = client.register(nba, "Yao Ming", "yaoming.jpg", policy="no_use")
    clip = stack.media_root / "platforms" / "tube" / "in" / "clip.mp4"  # tube's own folder
    clip.parent.mkdir(parents=True)
    encode_video(clip, [Scene(photo("yaoming.jpg"), 3.0, "pan")])

    def upload(uploader: str):
        with open(clip, "rb") as handle:
            return client.http.post("/v1/scans", headers=tube, data={"uploader": uploader},
                                    files={"file": ("clip.mp4", handle, "video/mp4")})

    uploaded = upload("user-1")
    by_path = client.http.post("/v1/scans", headers=tube, data={"uploader": "user-2", "path": "in/clip.mp4"})
    assert uploaded.status_code == by_path.status_code == 202, (uploaded.text, by_path.text)
    scan_id, path_scan = uploaded.json()["id"], by_path.json()["id"]
    refused = client.http.delete(f"/v1/scans/{scan_id}", headers=tube)  # not scanned yet: refused, nothing lost
    assert refused.status_code == 409 and "still queued or running" in refused.json()["error"]["reason"]
    for job_id in (scan_id, path_scan):
        job = wait_for(lambda j=job_id: client.finished(j, tube), 120, "the scan")
        assert job["status"] == "done", (job, worker.tail())

    db = Database.open(stack.database_url)
    media = stack.media_root
    assert (media / "uploads" / scan_id).is_dir() and image_path(media, scan_id, yao, 0).is_file()
    assert _rows(db, scan_id) == (1, 1, 1)
    url = image_url(scan_id, yao, 0)
    assert client.http.delete(f"/v1/scans/{scan_id}", headers=vimeo).status_code == 404  # not its scan
    assert client.http.delete(f"/v1/scans/{scan_id}", headers=nba).status_code == 403  # platforms only
    for _ in range(2):  # idempotent
        assert client.http.delete(f"/v1/scans/{scan_id}", headers=tube).status_code == 204
    assert not (media / "uploads" / scan_id).exists() and not (media / "evidence" / scan_id).exists()
    assert _rows(db, scan_id) == (0, 0, 0)
    assert client.job(scan_id, tube)["status"] == "deleted"
    assert client.http.get(f"/v1/scans/{scan_id}/report", headers=tube).status_code == 404
    for headers in (tube, nba):
        assert client.http.get(url, headers=headers).status_code == 404
    assert [f["scan_id"] for f in client.http.get("/v1/findings", headers=nba).json()] == [path_scan]

    # Retention: nothing without a period; a day keeps a fresh scan; 0 days deletes every finished one.
    unset = _purge(stack)
    assert unset.returncode != 0 and unset.stderr.count("\n") == 1 and "no retention period" in unset.stderr
    kept = _purge(stack, LIKENESS_SERVICE__SCAN_RETENTION_DAYS="1")
    assert kept.returncode == 0 and json.loads(kept.stdout)["deleted"] == 0, kept.stderr
    purged = _purge(stack, "--older-than-days", "0")
    assert purged.returncode == 0 and json.loads(purged.stdout)["scans"] == [path_scan], purged.stderr
    assert client.job(path_scan, tube)["status"] == "deleted" and _rows(db, path_scan) == (0, 0, 0)
    assert not (media / "evidence" / path_scan).exists()
    assert clip.is_file()  # submitted by path: the platform's own file stays
    assert client.http.get("/v1/findings", headers=nba).json() == []

    again = upload("user-1")  # the deleted scan no longer claims the upload: scanned anew
    assert again.status_code == 202 and again.json()["id"] != scan_id


def test_removing_a_person_withdraws_images_of_the_characters_they_play(make_stack, make_client, workers):
    stack = make_stack()
    workers(stack, "withdrawal")
    client = make_client(stack)
    nba, studio = client.key("rights_holder", "nba"), client.key("rights_holder", "studio")
    yao = client.register(nba, "Yao Ming", "yaoming.jpg", policy="no_use")

    # A stored scan with findings about two characters, one played by Yao, each with an image.
    db = Database.open(stack.database_url)
    findings = []
    with db.transaction() as s:
        for name in ("Giant", "Robot"):
            character = IdentityRow(name=name, kind="character", owner="studio", policy="no_use")
            s.add(character)
            s.flush()
            played_by = ["Yao Ming"] if name == "Giant" else []
            if played_by:
                s.add(CharacterCastRow(character_id=character.id, actor_id=yao))
            findings.append({"identity": {"id": character.id, "name": name, "kind": "character", "owner": "studio",
                                          "played_by": played_by},
                             "category": "ip_character", "action": "block", "confidence": 0.9, "similarity": 0.8,
                             "start_s": 0.0, "end_s": 1.0, "images": {"available": True, "count": 1, "reason": None},
                             "evidence": [{"t_s": 0.5, "bbox": [0, 0, 10, 10], "similarity": 0.8,
                                           "image": image_url("scan-1", character.id, 0)}]})
        s.add(ScanRow(id="scan-1", video="v.mp4", uploader="u", gallery_version=1, action="block",
                      report={"findings": findings}))
        s.flush()
        s.add_all(FindingRow(scan_id="scan-1", identity_id=f["identity"]["id"], owner="studio", category="ip_character",
                             action="block", confidence=0.9, similarity=0.8, start_s=0.0, end_s=1.0, data=f)
                  for f in findings)
    giant, robot = (f["identity"]["id"] for f in findings)
    for character in (giant, robot):
        path = image_path(stack.media_root, "scan-1", character, 0)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\xff\xd8 a face")

    removal = client.http.delete(f"/v1/likenesses/{yao}", headers=nba)
    removed = wait_for(lambda: client.finished(removal.json()["id"], nba), 60, "removal")
    assert removed["status"] == "done" and removed["result"]["character_evidence_scans_cleared"] == 1, removed
    assert not image_path(stack.media_root, "scan-1", giant, 0).exists()
    assert image_path(stack.media_root, "scan-1", robot, 0).exists()  # not played by Yao: kept
    detail = {f["identity_id"]: f["detail"] for f in client.http.get("/v1/findings", headers=studio).json()}
    assert detail[giant]["images"]["available"] is False and "plays this character" in detail[giant]["images"]["reason"]
    assert not any("image" in e for e in detail[giant]["evidence"])
    assert detail[robot]["images"]["available"] is True
    with db.session() as s:
        report = s.get(ScanRow, "scan-1").report
    assert [f["images"]["available"] for f in report["findings"]] == [False, True]
    # What a merge storing while Yao was removed checks afterwards: its finding names a lost actor.
    service = Service(stack.settings())
    assert [withdrawal.lost_an_actor(service, f) for f in findings] == [True, False]


def test_a_late_merge_cannot_bring_back_a_deleted_scan(make_stack):
    jobs = JobStore(Database.open(make_stack().database_url))
    job, _ = jobs.create("scan", "tube", {"video": "v.mp4", "uploader": "u"})
    assert jobs.start(job.id) and jobs.fail(job.id, "gave up")  # while a merge of it still runs somewhere
    assert jobs.delete_scan(job.id) and jobs.delete_scan(job.id)
    report = {"verdict": {"action": "allow"}, "gallery_version": 1, "findings": []}
    assert not jobs.complete_scan(job, report, [], webhook=False)
    assert jobs.get(job.id).status == "deleted" and jobs.report(job.id) is None
