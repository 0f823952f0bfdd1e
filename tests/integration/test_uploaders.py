"""Uploaders are namespaced by the platform that submits the scan, through a real worker.

A rights holder registers Yao Ming (no use by others, his own stricter threshold) and authorises
one user of platform `tube`. Platform `vimeo` can neither pass as the owner nor borrow tube's user;
tube's user is allowed. An authorisation stored before namespacing (a plain id) matches no
platform, and a threshold changed with PATCH reaches the worker's next decision.
"""
from __future__ import annotations

from gallery.store import GalleryStore
from samples.services import copy_into, video, wait_for

AUTHORISED = "uploader tube:yao-official is authorised by the owner of Yao Ming (person, owner nba)"


def test_a_platform_cannot_impersonate_the_owner_or_another_platforms_user(make_stack, make_client, workers):
    stack = make_stack()
    worker = workers(stack, "uploaders")
    client = make_client(stack)
    nba = client.key("rights_holder", "nba")
    tube, vimeo = client.key("platform", "tube"), client.key("platform", "vimeo")
    yao = client.register(nba, "Yao Ming", "yaoming.jpg", policy="no_use",
                          authorized_uploaders="tube:yao-official", match_threshold="0.45")
    listed = client.http.get("/v1/likenesses", headers=nba).json()
    assert [(i["id"], i["authorized_uploaders"], i["match_threshold"]) for i in listed] == \
        [(yao, ["tube:yao-official"], 0.45)]
    for name in ("tube", "vimeo"):  # each platform scans from its own folder
        copy_into(stack.media_root, video("yao-static-5s"), f"platforms/{name}/in/clip.mp4")

    def scan(platform: dict, uploader: str, key: str | None = None) -> dict:
        headers = {**platform, "Idempotency-Key": key} if key else platform
        submitted = client.http.post("/v1/scans", headers=headers, data={"uploader": uploader, "path": "in/clip.mp4"})
        assert submitted.status_code == 202, submitted.text
        job = wait_for(lambda: client.finished(submitted.json()["id"], platform), 180, f"the scan for {uploader}")
        assert job["status"] == "done", (job, worker.tail())
        report = client.http.get(f"/v1/scans/{job['id']}/report", headers=platform).json()
        assert [f["identity"]["id"] for f in report["findings"]] == [yao], report["findings"]
        return report

    for uploader in ("nba", "yao-official"):  # the owner's name, and tube's authorised user
        report = scan(vimeo, uploader)
        finding = report["findings"][0]
        assert finding["action"] == report["verdict"]["action"] == "review", finding
        assert not any("authorised" in r for r in finding["reasons"]), finding["reasons"]
    allowed = scan(tube, "yao-official")
    assert allowed["findings"][0]["action"] == allowed["verdict"]["action"] == "allow"
    assert allowed["findings"][0]["reasons"] == [AUTHORISED]

    # As a registration made before namespacing left it: the plain id authorises nobody now.
    GalleryStore(client.keys.db.engine).update_identity(yao, "nba", {"authorized_uploaders": ["yao-official"]})
    patched = client.http.patch(f"/v1/likenesses/{yao}", headers=nba, json={"match_threshold": 0.99})
    assert patched.status_code == 200 and patched.json()["authorized_uploaders"] == ["yao-official"]
    strict = scan(tube, "yao-official", key="after-patch")
    finding = strict["findings"][0]
    assert finding["action"] == "review" and AUTHORISED not in finding["reasons"]
    decisions = [t["decision"] for t in strict["tracks"] if t["decision"]["candidate"] == "Yao Ming"]
    assert decisions and all(d["status"] == "weak" for d in decisions)
    assert "this likeness's own threshold 0.99" in decisions[0]["reason"]
    assert strict["gallery_version"] == allowed["gallery_version"] + 2
