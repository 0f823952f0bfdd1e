"""A rights holder registers a person from a clip over HTTP, with a real worker: the dominant person's
faces are kept and named after the clip as uploaded, and a scan of other footage finds them."""
from __future__ import annotations

import cv2

from samples.clips import Scene, encode_video
from samples.photos import package_photo
from samples.services import copy_into, video, wait_for


def test_a_person_registered_from_a_clip_over_http_is_found(tmp_path, make_stack, make_client, workers):
    stack = make_stack()
    workers(stack, "clip-enroll")
    client = make_client(stack)
    owner, platform = client.key("rights_holder", "nba"), client.key("platform", "tube")
    yao, gdp = cv2.imread(str(package_photo("yaoming.jpg"))), cv2.imread(str(package_photo("gdp.jpg")))
    interview = encode_video(tmp_path / "interview.mp4", [Scene(yao, 3.0, "zoom_in"), Scene(gdp, 1.0, "static"),
                                                          Scene(yao, 2.0, "pan")], size=(640, 480), fps=25)
    with open(interview, "rb") as handle:
        response = client.http.post("/v1/likenesses", headers=owner, data={"name": "Yao Ming"},
                                    files=[("files", ("my-interview.mp4", handle, "video/mp4"))])
    assert response.status_code == 202, response.text
    job = wait_for(lambda: client.finished(response.json()["id"], owner), 180, "enrollment from a clip")
    assert job["status"] == "done", job
    result = job["result"]
    assert result["accepted"] and all(a.startswith("my-interview.mp4@") for a in result["accepted"])
    assert result["clips"][0]["clip"] == "my-interview.mp4" and result["clips"][0]["kept"]

    copy_into(stack.media_root, video("yao-8s"), "platforms/tube/yao.mp4")
    scan = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "yao.mp4"}).json()
    done = wait_for(lambda: client.finished(scan["id"], platform), 300, "the scan")
    assert done["status"] == "done", done
    report = client.http.get(f"/v1/scans/{scan['id']}/report", headers=platform).json()
    assert [f["identity"]["name"] for f in report["findings"]] == ["Yao Ming"]
