"""An IP character through the service: a studio registers Megamind over the API from a clip of one
shot (kind character: the CLI's character enrollment, CLIP and face references), a real worker scans
another part of the trailer in two segments cut inside his close-up, and the report has the
ip_character finding with one character track across the cut and its evidence images; removal takes his
image references and those images too.
"""
from __future__ import annotations

from sqlalchemy import func, select

from gallery.store import CharacterReferenceRow, GalleryStore
from samples.photos import package_photo
from samples.services import wait_for
from tests.test_characters_e2e import MEGAMIND_1, ROXANNE_2, cut_clip, opencv_data  # noqa: F401 (a fixture)
from workers.data.db import SegmentRow

# Registration takes 3 frames of the reference clip (~9 CLIP calls); the AI-image probe is not needed.
WORKER_ENV = {"LIKENESS_CHARACTERS__REFERENCE_INTERVAL_S": "0.75", "LIKENESS_CHARACTERS__MAX_REFERENCE_FRAMES": "3",
              "LIKENESS_IMAGE_PROBE": "false"}


def _post_likeness(client, headers, files, **form):
    handles = [open(path, "rb") for path in files]
    try:
        return client.http.post("/v1/likenesses", headers=headers, data=form,
                                files=[("files", (path.name, handle)) for path, handle in zip(files, handles)])
    finally:
        for handle in handles:
            handle.close()


def test_character_registered_over_the_api_is_found_in_a_segmented_scan(make_stack, make_client, workers,
                                                                         opencv_data, tmp_path):  # noqa: F811
    stack = make_stack(segment_s=2.0, worker_env=WORKER_ENV)
    worker = workers(stack, "characters")
    client = make_client(stack)
    studio, platform = client.key("rights_holder", "dreamworks"), client.key("platform", "tube")
    reference = cut_clip(opencv_data / "Megamind.avi", tmp_path / "megamind-shot1.mp4", *MEGAMIND_1)
    # Roxanne, then Megamind's close-up from 1.92 s on: segments [0, 2.0) and [2.0, end).
    upload = cut_clip(opencv_data / "Megamind.avi", tmp_path / "trailer-part.mp4", ROXANNE_2[0], 11.3)

    photo = package_photo("yaoming.jpg")
    refused = _post_likeness(client, studio, [photo], name="Yao", played_by="someone")
    assert refused.status_code == 400 and "played_by is for kind character" in refused.text
    refused = _post_likeness(client, studio, [photo], name="X", kind="character", played_by="no-such-id")
    assert refused.status_code == 400 and "no registered person" in refused.text

    response = _post_likeness(client, studio, [reference], name="Megamind", kind="character")
    assert response.status_code == 202, response.text
    job = wait_for(lambda: client.finished(response.json()["id"], studio), 180, "enrollment of Megamind")
    assert job["status"] == "done", (job, worker.tail())
    enrolled = job["result"]
    assert enrolled["accepted"] == [f"megamind-shot1.mp4@{t}s" for t in ("0.00", "0.75", "1.50")]
    assert enrolled["image_references"] == 9 and enrolled["face_references"] == enrolled["accepted"]
    assert enrolled["rejected"] == [] and enrolled["played_by"] == []
    megamind = enrolled["identity_id"]
    assert [(i["name"], i["kind"]) for i in client.http.get("/v1/likenesses", headers=studio).json()] == \
        [("Megamind", "character")]

    with open(upload, "rb") as handle:
        submitted = client.http.post("/v1/scans", headers=platform, data={"uploader": "user-3"},
                                     files={"file": ("upload.mp4", handle, "video/mp4")})
    assert submitted.status_code == 202, submitted.text
    scanned = wait_for(lambda: client.finished(submitted.json()["id"], platform), 300, "the scan")
    assert scanned["status"] == "done", (scanned, worker.tail())
    report = client.http.get(f"/v1/scans/{scanned['id']}/report", headers=platform).json()

    (finding,) = report["findings"]
    assert finding["category"] == "ip_character" and finding["status"] == "match"
    assert finding["identity"] == {"id": megamind, "name": "Megamind", "kind": "character", "owner": "dreamworks"}
    assert finding["reasons"][0].startswith("character Megamind, found by its")
    assert finding["evidence"] and all(e["t_s"] >= 1.9 for e in finding["evidence"])  # his shot, not Roxanne's
    images = [e["image"] for e in finding["evidence"] if "image" in e]  # cut from the upload after the merge
    assert finding["images"]["available"] and len(images) == finding["images"]["count"] >= 1
    fetched = client.http.get(images[0], headers=platform)
    assert fetched.status_code == 200 and fetched.content[:2] == b"\xff\xd8"  # a JPEG
    (track,) = [t for t in report["character_tracks"]["tracks"] if t["match"]]
    assert track["match"]["identity_id"] == megamind and track["start_s"] < 2.0 <= track["end_s"]
    with client.keys.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.job_id == scanned["id"])) == 2
    assert [f["identity_id"] for f in client.http.get("/v1/findings", headers=studio).json()] == [megamind]

    removal = client.http.delete(f"/v1/likenesses/{megamind}", headers=studio)
    assert removal.status_code == 202, removal.text
    assert wait_for(lambda: client.finished(removal.json()["id"], studio), 60, "removal")["status"] == "done"
    with GalleryStore.open(stack.database_url).session() as s:
        assert s.scalar(select(func.count()).select_from(CharacterReferenceRow)) == 0
    assert not (stack.home / "references" / megamind).exists()
    assert not (stack.media_root / "evidence" / scanned["id"] / megamind).exists()
