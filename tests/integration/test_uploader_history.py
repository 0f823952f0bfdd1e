"""An uploader who crosses the ladder's steps, through a real worker and the real API.

Uploader `u9` of platform `tube` posts an AI image of a registered person (C2PA-declared) among real
photos; a reviewer confirms the finding (warn). The same image re-posted after crop and re-encode (its
C2PA gone with the re-encode) is caught as a re-post of a confirmed violation without a new review
(restrict distribution), and again mirrored with a text overlay (suspend); the webhook carries the
recommendation. Another uploader, and the same id on another platform, have histories of their own;
deleting a scan takes it out of the history and its pictures out of the near-duplicate search.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from samples.photos import package_photo
from samples.services import video, wait_for
from tests.provenance_fixtures import sign_c2pa


def _repost(source: Path, target: Path, mirror: bool = False) -> Path:
    """Cropped (2.5% off each side), shrunk to 80% and re-encoded at JPEG quality 60; mirrored with a
    caption bar stamped on when asked. Re-encoding drops the C2PA manifest, as re-posting does."""
    image = cv2.imread(str(source))
    h, w = image.shape[:2]
    image = image[h // 40:h - h // 40, w // 40:w - w // 40]
    image = cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    if mirror:
        image = np.ascontiguousarray(image[:, ::-1])
        cv2.rectangle(image, (0, image.shape[0] * 5 // 6), (image.shape[1], image.shape[0]), (0, 0, 0), -1)
        cv2.putText(image, "lol", (10, image.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return target


def test_an_uploader_crosses_the_ladder(tmp_path, make_stack, make_client, workers, webhook_receiver):
    stack = make_stack()
    worker = workers(stack, "history")
    client = make_client(stack)
    nba = client.key("rights_holder", "nba")
    yao = client.register(nba, "Yao Ming", "yaoming.jpg")
    tube, vimeo = client.key("platform", "tube"), client.key("platform", "vimeo")
    webhook_receiver.fail_first = 0
    ai = sign_c2pa(package_photo("yaoming.jpg"), tmp_path / "ai.jpg", "image/jpeg", "trainedAlgorithmicMedia")

    def post(platform: dict, uploader: str, files: list[Path], callback: bool = False) -> tuple[str, dict]:
        handles = [open(f, "rb") for f in files]
        data = {"uploader": uploader, **({"callback_url": webhook_receiver.url} if callback else {})}
        try:
            submitted = client.http.post("/v1/scans", headers=platform, data=data,
                                         files=[("items", (f.name, h)) for f, h in zip(files, handles)])
        finally:
            for handle in handles:
                handle.close()
        assert submitted.status_code == 202, submitted.text
        try:
            job = wait_for(lambda: client.finished(submitted.json()["id"], platform), 300, "a post's scan")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {worker.tail()}") from exc
        assert job["status"] == "done", (job, worker.tail())
        return job["id"], client.http.get(f"/v1/scans/{job['id']}/report", headers=platform).json()

    def history(platform: dict, uploader: str) -> dict:
        response = client.http.get(f"/v1/uploaders/{uploader}", headers=platform)
        assert response.status_code == 200, response.text
        return response.json()

    first, report = post(tube, "u9", [package_photo("grace_hopper.jpg"), ai])
    assert report["verdict"]["action"] == "restrict" and report["near_duplicates"] == []
    seen = history(tube, "u9")
    assert seen["totals"] == {"scans": 1, "items": 2, "ai_declared": 0, "undeclared_ai": 1, "impersonation": 1,
                              "portrait_rights": 0, "reposts_of_confirmed": 0, "confirmed_violations": 0}
    assert seen["recommendation"]["action"] == "none"

    # A reviewer confirms: one confirmed violation warns, resting on that decision.
    finding = next(f for f in client.http.get("/v1/findings", headers=nba).json() if f["scan_id"] == first)
    decided = client.http.post(f"/v1/findings/{finding['id']}/decision", headers=tube, json={
        "decision": "confirmed", "reason": "impersonation", "comment": "an AI picture of him"})
    assert decided.status_code == 201, decided.text
    warned = history(tube, "u9")["recommendation"]
    assert warned["action"] == "warn"
    assert warned["rests_on"] == [{"kind": "confirmed_violations", "scan_id": first, "identity_id": yao,
                                   "finding_id": finding["id"], "decision_id": decided.json()["id"]}]

    # Re-posted after crop and re-encode: no AI metadata left, caught as a re-post of the confirmed item.
    second, report = post(tube, "u9", [_repost(ai, tmp_path / "again.jpg"), package_photo("astronaut.png")])
    assert report["items"][0]["provenance"]["declares_ai"] is False
    [repeat] = report["near_duplicates"]
    assert (repeat["item"], repeat["scan_id"], repeat["scan_item"], repeat["same_uploader"]) == (0, first, 1, True)
    assert repeat["confirmed"][0]["decision_id"] == decided.json()["id"]
    assert report["verdict"]["action"] == "restrict"
    assert report["verdict"]["reasons"][0].startswith(f"item 0 re-posts item 1 of scan {first}")
    assert history(tube, "u9")["recommendation"]["action"] == "restrict_distribution"

    # Mirrored with a caption stamped on: the third confirmed violation suspends; the webhook says so.
    third, report = post(tube, "u9", [_repost(ai, tmp_path / "mirrored.jpg", mirror=True)], callback=True)
    assert any(r["scan_id"] == first and r["confirmed"] for r in report["near_duplicates"])
    hook = wait_for(lambda: [c for c in webhook_receiver.calls if third.encode() in c["body"]], 60, "the webhook")
    account = json.loads(hook[0]["body"])["uploader_history"]
    assert account["recommendation"]["action"] == "suspend"
    assert {e["scan_id"] for e in account["recommendation"]["rests_on"]} == {first, second, third}
    full = history(tube, "u9")
    assert full["totals"]["confirmed_violations"] == 3 and full["totals"]["scans"] == 3
    assert full["clusters"] == [{"size": 3, "pictures": sorted([f"{first}/1", f"{second}/0", f"{third}/0"])}]
    assert "face" not in json.dumps(full) and "embedding" not in json.dumps(full)

    # Others: a different uploader of tube, and u9 of another platform, start clean; a plain video scan
    # (segments and merge) counts in its uploader's history too.
    assert history(tube, "u10")["totals"]["scans"] == 0
    with open(video("yao-static-5s"), "rb") as handle:
        clip = client.http.post("/v1/scans", headers=tube, data={"uploader": "u10"}, files={"file": handle})
    assert wait_for(lambda: client.finished(clip.json()["id"], tube), 300, "the video scan")["status"] == "done"
    assert history(tube, "u10")["totals"] == {"scans": 1, "items": 1, "ai_declared": 0, "undeclared_ai": 0,
                                              "impersonation": 0, "portrait_rights": 0, "reposts_of_confirmed": 0,
                                              "confirmed_violations": 0}
    assert history(vimeo, "u9")["recommendation"]["action"] == "none"

    # Deleting a scan takes it out of the history and out of the near-duplicate search.
    assert client.http.delete(f"/v1/scans/{third}", headers=tube).status_code == 204
    after = history(tube, "u9")
    assert after["totals"]["scans"] == 2 and after["recommendation"]["action"] == "restrict_distribution"
    assert after["clusters"] == [{"size": 2, "pictures": sorted([f"{first}/1", f"{second}/0"])}]
