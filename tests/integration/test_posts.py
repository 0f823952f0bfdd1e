"""A post through the service, on a real worker: a carousel (a real photo, an AI image of the
registered person declared by C2PA, a real clip of him) uploaded as multipart items with its caption;
the same post by path; a post with a broken item fails naming it."""
from __future__ import annotations

import json

from samples.photos import package_photo
from samples.services import copy_into, video, wait_for
from tests.provenance_fixtures import sign_c2pa


def _finished(client, job_id: str, headers: dict, worker) -> dict:
    try:
        return wait_for(lambda: client.finished(job_id, headers), 300, f"scan {job_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; worker log: {worker.tail()}") from exc


def test_a_carousel_is_one_scan_with_per_item_findings(tmp_path, make_stack, make_client, workers,
                                                       webhook_receiver):
    stack = make_stack()
    worker = workers(stack, "posts")
    client = make_client(stack)
    yao = client.register(client.key("rights_holder", "nba"), "Yao Ming", "yaoming.jpg")
    tube = client.key("platform", "tube")
    ai = sign_c2pa(package_photo("yaoming.jpg"), tmp_path / "ai.jpg", "image/jpeg", "trainedAlgorithmicMedia")
    files = [package_photo("grace_hopper.jpg"), ai, video("yao-static-5s")]
    handles = [open(f, "rb") for f in files]
    try:
        submitted = client.http.post(
            "/v1/scans", headers=tube,
            data={"uploader": "u1", "caption": "weekend\nwith friends", "callback_url": webhook_receiver.url},
            files=[("items", (f.name, h)) for f, h in zip(files, handles)])
    finally:
        for handle in handles:
            handle.close()
    assert submitted.status_code == 202, submitted.text
    job = _finished(client, submitted.json()["id"], tube, worker)
    assert job["status"] == "done", (job, worker.tail())
    report = client.http.get(f"/v1/scans/{job['id']}/report", headers=tube).json()
    assert report["post"]["kinds"] == ["image", "image", "video"]
    assert [i["video"]["path"] for i in report["items"]] == ["grace_hopper.jpg", "ai.jpg", "yao-static-5s.mp4"]
    assert "uploads" not in json.dumps(report)  # no server path
    # Per item: the AI image is an impersonation, the real clip of him his portrait; the post's one finding
    # about him is its most severe item's, naming both.
    assert [[(f["identity"]["id"], f["category"], f["action"]) for f in i["findings"]] for i in report["items"]] == \
        [[], [(yao, "impersonation", "restrict")], [(yao, "portrait_rights", "allow")]]
    assert [(f["item"], f["items"], f["action"]) for f in report["findings"]] == [(1, [1, 2], "restrict")]
    assert report["verdict"]["action"] == "restrict"
    assert report["post"]["declaration"] == {"declared": False, "declared_field": False, "caption": []}
    hook = wait_for(lambda: [c for c in webhook_receiver.calls if b"scan.finished" in c["body"]][-1:], 60,
                    "the webhook")[0]
    payload = json.loads(hook["body"])
    assert payload["verdict"]["action"] == "restrict" and [f["item"] for f in payload["findings"]] == [1]

    # The same post from the platform's folder, declared in its caption: label, not restrict.
    for number, source in enumerate(files):
        copy_into(stack.media_root, source, f"platforms/tube/post/{number}{source.suffix}")
    declared = client.http.post("/v1/scans", headers=tube, data={
        "uploader": "u1", "caption": "新造型 #AI生成", "paths": [f"post/{n}{f.suffix}" for n, f in enumerate(files)]})
    assert declared.status_code == 202, declared.text
    job = _finished(client, declared.json()["id"], tube, worker)
    report = client.http.get(f"/v1/scans/{job['id']}/report", headers=tube).json()
    assert report["post"]["declaration"]["caption"] == ["#AI生成"]
    assert report["findings"][0]["action"] == "label" and report["verdict"]["action"] == "label"

    # A broken item fails the post, naming it; nothing half-scanned is stored.
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with open(tmp_path / "broken.jpg", "rb") as handle:
        bad = client.http.post("/v1/scans", headers=tube, data={"uploader": "u1"},
                               files=[("items", ("a.jpg", open(files[0], "rb"))), ("items", ("b.jpg", handle))])
    job = _finished(client, bad.json()["id"], tube, worker)
    assert job["status"] == "failed" and "item 1" in job["error"], job
