"""Evidence images through the service: re-extracted from the upload after the merge, served to the
scan's platform and the likeness's owner only, and deleted with the likeness.

The clip is a phone-style portrait video stored turned (a display matrix of 90 degrees) and scanned
in two segments, so the images only show the face if the merge decodes the right frames and turns
them the way the scan did.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.faces.align import align_face
from samples.clips import Scene, encode_video
from samples.services import wait_for
from workers.scans.evidence import MAX_SIDE, attach_images


def _best_similarity(image: np.ndarray, reference: np.ndarray, detector, embedder) -> float:
    faces = detector.detect(image)
    assert faces, "no face in the evidence image"
    crops = [align_face(image, face.landmarks) for face in faces]
    return float(np.max(embedder.embed(crops) @ reference))


def test_evidence_images_reach_whom_they_concern_and_go_with_the_likeness(
        make_stack, make_client, workers, detector, embedder, photo):
    stack = make_stack(segment_s=4.0)  # a 6 s clip: two segments, merged on one worker
    worker = workers(stack, "evidence")
    client = make_client(stack)
    nba, studio = client.key("rights_holder", "nba"), client.key("rights_holder", "studio")
    tube, vimeo = client.key("platform", "tube"), client.key("platform", "vimeo")
    yao = client.register(nba, "Yao Ming", "yaoming.jpg", policy="no_use")

    upload = stack.media_root / "platforms" / "tube" / "in" / "portrait.mp4"  # tube's own folder
    upload.parent.mkdir(parents=True)
    encode_video(upload, [Scene(photo("yaoming.jpg"), 6.0, "pan")], size=(360, 640), fps=25, rotation=90, gop=25)
    submitted = client.http.post("/v1/scans", headers=tube, data={"uploader": "user-1", "path": "in/portrait.mp4"})
    assert submitted.status_code == 202, submitted.text
    scan_id = submitted.json()["id"]
    job = wait_for(lambda: client.finished(scan_id, tube), 180, "the scan")
    assert job["status"] == "done", (job, worker.tail())

    report = client.http.get(f"/v1/scans/{scan_id}/report", headers=tube).json()
    assert report["video"]["rotation"] != 0 and (report["video"]["width"], report["video"]["height"]) == (360, 640)
    [finding] = report["findings"]
    assert finding["identity"]["id"] == yao
    urls = [entry["image"] for entry in finding["evidence"] if "image" in entry]
    assert finding["images"] == {"available": True, "count": len(urls), "reason": None} and 2 <= len(urls) <= 3
    assert len({e["t_s"] for e in finding["evidence"] if "image" in e}) == len(urls)  # distinct instants

    detected = detector.detect(photo("yaoming.jpg"))
    face = max(detected, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
    reference = embedder.embed([align_face(photo("yaoming.jpg"), face.landmarks)])[0]
    for url in urls:
        response = client.http.get(url, headers=tube)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and max(image.shape[:2]) <= MAX_SIDE
        assert _best_similarity(image, reference, detector, embedder) > 0.6, url

    # The owner reads them through its findings; another platform and another owner learn nothing.
    [mine] = client.http.get("/v1/findings", headers=nba).json()
    assert [e.get("image") for e in mine["detail"]["evidence"] if "image" in e] == urls
    assert client.http.get(urls[0], headers=nba).status_code == 200
    for stranger in (vimeo, studio):
        response = client.http.get(urls[0], headers=stranger)
        assert response.status_code == 404 and response.json()["error"]["reason"].startswith("no ")
    assert client.http.get(f"/v1/scans/{scan_id}/evidence/{yao}/7", headers=tube).status_code == 422

    # Removing the likeness deletes its images, and the report and findings say so.
    folder = stack.media_root / "evidence" / scan_id / yao
    assert len(list(folder.glob("*.jpg"))) == len(urls)
    removal = client.http.delete(f"/v1/likenesses/{yao}", headers=nba)
    removed = wait_for(lambda: client.finished(removal.json()["id"], nba), 60, "removal")
    assert removed["status"] == "done" and removed["result"]["evidence_scans_cleared"] == 1
    assert not folder.exists()
    for headers in (tube, nba):
        assert client.http.get(urls[0], headers=headers).status_code == 404
    [finding] = client.http.get(f"/v1/scans/{scan_id}/report", headers=tube).json()["findings"]
    assert not any("image" in entry for entry in finding["evidence"])
    assert finding["images"]["available"] is False and "likeness was removed" in finding["images"]["reason"]


def test_a_vanished_upload_leaves_findings_without_images_and_says_why(tmp_path):
    finding = {"identity": {"id": "someone"}, "evidence": [{"t_s": 1.0, "bbox": [10, 10, 60, 60], "similarity": 0.8}]}
    report = {"findings": [finding], "warnings": []}
    attach_images(report, tmp_path / "gone.mp4", tmp_path / "media", "scan-1")
    [finding] = report["findings"]
    assert finding["images"]["available"] is False and "the uploaded video is gone" in finding["images"]["reason"]
    assert report["warnings"] == [finding["images"]["reason"]]
    assert not (tmp_path / "media").exists()
