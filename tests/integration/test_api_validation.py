"""What a black-box run of the API found, without workers: inputs refused at the edge with a 4xx
that names the field (NUL and other control characters, lengths) before anything is written; paths
tied to the platform that submits them; no server paths or SQL in what clients read; a failed scan
resubmitted under the same Idempotency-Key; job ids named consistently; an unhandled error answered
as JSON without tearing down the connection."""
from __future__ import annotations

import os

from fastapi.testclient import TestClient

from samples.services import copy_into, video
from workers.api.app import create_api


def _error(response, status: int | tuple[int, ...]) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    return body["error"]["reason"]


def _left_on_disk(media_root, folder: str) -> list:
    return [p for p in (media_root / folder).rglob("*") if p.is_file()] if (media_root / folder).exists() else []


def test_bad_paths_are_refused_naming_the_field(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    platform = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/in/clip.mp4")

    def scan(path):
        return client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": path})

    assert _error(scan("in/clip\x00.mp4"), 400).startswith("path:")
    assert _error(scan("in/" + "a" * 5000), (400, 422)).startswith("path:")
    assert _error(scan("in/" + "a" * 300 + ".mp4"), 400).startswith("path:")  # one name over the file system's
    assert _error(scan("in/\nclip.mp4"), 400).startswith("path:")
    # the connection is still usable afterwards, and a good path still works
    assert scan("in/clip.mp4").status_code == 202


def test_nul_in_uploader_is_refused_before_the_upload_is_written(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    platform = client.key("platform", "tube")
    clip = video("yao-static-5s").read_bytes()
    for uploader in ("user\x00-1", "user\n1", "\x7f"):
        response = client.http.post("/v1/scans", headers=platform, data={"uploader": uploader},
                                    files={"file": ("clip.mp4", clip)})
        assert _error(response, 400).startswith("uploader:")
    for field, value in (("callback_url", "http://example.com/\x00"), ):
        response = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", field: value},
                                    files={"file": ("clip.mp4", clip)})
        assert _error(response, 400).startswith(f"{field}:")
    assert _left_on_disk(stack.media_root, "uploads") == []
    # long names everywhere still fit the database (its idempotency keys are bounded)
    long_platform = client.key("platform", "p" * 200)
    response = client.http.post("/v1/scans", headers={**long_platform, "Idempotency-Key": "k" * 200},
                                data={"uploader": "u" * 200}, files={"file": ("clip.mp4", clip)})
    assert response.status_code == 202, response.text
    response = client.http.post("/v1/scans", headers=long_platform, data={"uploader": "u" * 200, "declared_ai": "true"},
                                files={"file": ("clip.mp4", clip)})
    assert response.status_code == 202, response.text


def test_likeness_fields_are_refused_before_references_are_staged(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    http, owner = client.http, client.key("rights_holder", "nba")
    photo = video("yao-static-5s").read_bytes()[:1000]

    def register(**data):
        return http.post("/v1/likenesses", headers=owner, data={"name": "Yao", **data},
                         files=[("files", ("a.jpg", photo))])

    assert _error(register(name="Yao\x00Ming"), 400).startswith("name:")
    assert _error(register(authorized_uploaders=["tube:user\x00"]), 400).startswith("authorized_uploaders:")
    assert _error(register(played_by=["abc\x00"]), 400).startswith("played_by:")
    assert _error(register(face="1\x00"), 400).startswith("face:")
    assert _error(http.post("/v1/likenesses", headers={**owner, "Idempotency-Key": "k\x01"},
                            data={"name": "Yao"}, files=[("files", ("a.jpg", photo))]), 400) \
        .startswith("Idempotency-Key:")
    assert _left_on_disk(stack.media_root, "enroll") == []
    # a client's file name with a NUL is never used, nor does it break the stored job
    accepted = http.post("/v1/likenesses", headers=owner, data={"name": "Yao"}, files=[("files", ("a\x00.jpg", photo))])
    assert accepted.status_code == 202, accepted.text

    assert _error(http.patch("/v1/likenesses/abc", headers=owner, json={"authorized_uploaders": ["tube:\u0000"]}),
                  (400, 404))
    for principal in ("a\u0000b", "a/b", "..", "a\nb"):
        assert _error(http.post("/v1/keys", headers=client.admin, json={"role": "platform", "principal": principal}),
                      422).startswith("principal:")
    assert _error(http.post("/v1/keys", headers=client.admin,
                            json={"role": "platform", "principal": "x", "label": "\u0000"}), 422).startswith("label:")


def test_ids_in_urls_are_checked(make_stack, make_client):
    client = make_client(make_stack())
    platform, owner = client.key("platform", "tube"), client.key("rights_holder", "nba")
    for url, headers in (("/v1/jobs/a%00b", platform), ("/v1/scans/a%00b/report", platform),
                         ("/v1/scans/a%00b/evidence/x/0", platform), ("/v1/findings?identity_id=a%00b", owner),
                         ("/v1/jobs/" + "a" * 5000, platform)):
        assert 400 <= client.http.get(url, headers=headers).status_code < 500, url
    for url, headers in (("/v1/scans/a%00b", platform), ("/v1/likenesses/a%00b", owner),
                         ("/v1/keys/a%00b", client.admin)):
        assert 400 <= client.http.delete(url, headers=headers).status_code < 500, url
    assert 400 <= client.http.patch("/v1/likenesses/a%00b", headers=owner,
                                    json={"policy": "allow"}).status_code < 500


def test_a_platform_reaches_only_its_own_folder(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    tube, other = client.key("platform", "tube"), client.key("platform", "other")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/other/clip.mp4")
    copy_into(stack.media_root, video("yao-static-5s"), "clip.mp4")  # the old layout: nobody's folder

    def scan(headers, path):
        return client.http.post("/v1/scans", headers=headers, data={"uploader": "u", "path": path})

    assert "no file" in _error(scan(tube, "clip.mp4"), 404)  # neither the root's file nor other's
    assert "'..'" in _error(scan(tube, "../other/clip.mp4"), 400)
    uploaded = client.http.post("/v1/scans", headers=tube, data={"uploader": "u"},
                                files={"file": ("mine.mp4", video("gdp-5s").read_bytes())})
    assert uploaded.status_code == 202, uploaded.text
    stored = stack.media_root / "uploads" / uploaded.json()["id"] / "video.mp4"
    assert stored.is_file()
    assert "'..'" in _error(scan(other, f"../../uploads/{uploaded.json()['id']}/video.mp4"), 400)
    os.symlink(stored, stack.media_root / "platforms" / "other" / "link.mp4")
    assert "leaves" in _error(scan(other, "link.mp4"), 400)
    os.symlink(stack.media_root / "platforms" / "other", stack.media_root / "platforms" / "tube")
    assert "leaves" in _error(scan(tube, "clip.mp4"), 400)  # a platform folder that is a link elsewhere
    (stack.media_root / "platforms" / "tube").unlink()
    assert scan(other, "clip.mp4").status_code == 202


def test_clients_see_no_server_paths_or_sql(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    tube = client.key("platform", "tube")
    jobs = client.app.state.service.jobs
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/in/clip.mp4")
    by_path = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "in/clip.mp4"}).json()
    by_file = client.http.post("/v1/scans", headers=tube, data={"uploader": "u"},
                               files={"file": ("My Clip.mp4", video("gdp-5s").read_bytes())}).json()
    root = str(stack.media_root.resolve())
    for submitted, shown in ((by_path, "in/clip.mp4"), (by_file, "My Clip.mp4")):
        job = jobs.get(submitted["id"])
        report = {"video": {"path": job.params["video"], "duration_s": 5.0}, "verdict": {"action": "allow",
                  "reasons": []}, "gallery_version": 0, "findings": [],
                  "warnings": [f"evidence images unavailable: the uploaded video is gone ({job.params['video']})"]}
        assert jobs.complete_scan(job, report, [], False)
        served = client.http.get(f"/v1/scans/{submitted['id']}/report", headers=tube)
        assert served.status_code == 200
        assert served.json()["video"]["path"] == shown
        assert root not in served.text and str(stack.home) not in served.text

    failing = client.http.post("/v1/scans", headers=tube, data={"uploader": "v", "path": "in/clip.mp4"}).json()
    jobs.fail(failing["id"], f"scan: not a video: {root}/platforms/tube/in/clip.mp4")
    shown = client.job(failing["id"], tube)["error"]
    assert root not in shown and "clip.mp4" in shown and shown.startswith("scan: not a video")
    assert root not in _error(client.http.get(f"/v1/scans/{failing['id']}/report", headers=tube), 409)

    sql = client.http.post("/v1/scans", headers=tube, data={"uploader": "w", "path": "in/clip.mp4"}).json()
    jobs.fail(sql["id"], "merge_scan: DataError: (psycopg.DataError) PostgreSQL text fields cannot contain NUL "
                         "(0x00) bytes [SQL: INSERT INTO scans (id, video) VALUES (%(id)s::VARCHAR, %(video)s)] "
                         "[parameters: {'video': '/srv/media/x.mp4'}] (Background on this error at: "
                         "https://sqlalche.me/e/20/9h9h)")
    shown = client.job(sql["id"], tube)["error"]
    assert shown.startswith("merge_scan:") and "database" in shown
    for leak in ("SQL", "INSERT", "psycopg", "/srv/media", "sqlalche.me"):
        assert leak not in shown


def test_a_failed_scan_can_be_resubmitted_with_the_same_key(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    tube = {**client.key("platform", "tube"), "Idempotency-Key": "upload-1"}
    jobs = client.app.state.service.jobs
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/a.mp4")
    first = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "a.mp4"})
    again = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "a.mp4"})
    assert (first.status_code, again.status_code) == (202, 200) and first.json()["id"] == again.json()["id"]
    jobs.fail(first.json()["id"], "scan: time limit of 900 s per task exceeded")
    retried = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "a.mp4"})
    assert retried.status_code == 202 and retried.json()["id"] != first.json()["id"]
    assert retried.json()["status"] == "queued"
    assert client.job(first.json()["id"], tube)["status"] == "failed"  # the failed one is still there
    repeat = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "a.mp4"})
    assert repeat.status_code == 200 and repeat.json()["id"] == retried.json()["id"]
    # the default key (same bytes, same uploader) too
    plain = {k: v for k, v in tube.items() if k != "Idempotency-Key"}
    one = client.http.post("/v1/scans", headers=plain, data={"uploader": "z", "path": "a.mp4"}).json()
    jobs.fail(one["id"], "scan: gave up")
    two = client.http.post("/v1/scans", headers=plain, data={"uploader": "z", "path": "a.mp4"})
    assert two.status_code == 202 and two.json()["id"] != one["id"]


def test_job_and_scan_ids_are_named_consistently(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    tube = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/a.mp4")
    job = client.http.post("/v1/scans", headers=tube, data={"uploader": "u", "path": "a.mp4"}).json()
    assert job["id"] == job["job_id"] == job["scan_id"]
    assert client.job(job["job_id"], tube)["scan_id"] == job["id"]
    paths = client.http.get("/openapi.json").json()["paths"]
    assert {"/v1/scans/{scan_id}/report", "/v1/scans/{scan_id}", "/v1/scans/{scan_id}/evidence/{identity_id}/{number}",
            "/v1/jobs/{job_id}"} <= set(paths)
    assert not any("{job_id}" in p for p in paths if p.startswith("/v1/scans"))
    job_schema = client.http.get("/openapi.json").json()["components"]["schemas"]["JobOut"]["properties"]
    assert job_schema["id"].get("deprecated") is True and "deprecated" not in job_schema["job_id"]


def test_an_unhandled_error_is_json_and_not_raised_to_the_server(make_stack, make_client, monkeypatch):
    """Re-raised past the app, the error makes the server drop a kept-alive connection."""
    stack = make_stack()
    client = make_client(stack)
    tube = client.key("platform", "tube")
    app = create_api(stack.settings())

    def broken(_):
        raise RuntimeError("boom at /srv/secret")

    monkeypatch.setattr(app.state.service.jobs, "get", broken)
    with TestClient(app, raise_server_exceptions=True) as strict:
        response = strict.get("/v1/jobs/abc", headers=tube)
        assert _error(response, 500) == "internal error"
        assert "secret" not in response.text


def test_a_kept_alive_connection_survives_errors(make_stack, make_client, monkeypatch):
    """A real server (uvicorn) and one connection: a 500, then the bad inputs the black-box run sent,
    then a good request, all answered on that same connection."""
    import socket
    import threading
    import time

    import uvicorn

    from samples.services import free_port

    stack = make_stack()
    client = make_client(stack)
    tube = client.key("platform", "tube")
    app = create_api(stack.settings())
    real_get = app.state.service.jobs.get

    def broken(job_id):
        if job_id == "boom":
            raise RuntimeError("boom")
        return real_get(job_id)

    monkeypatch.setattr(app.state.service.jobs, "get", broken)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        key = tube["X-API-Key"]

        def form(fields: dict[str, str]) -> bytes:
            body = b"".join(b"--b\r\nContent-Disposition: form-data; name=\"" + k.encode() + b"\"\r\n\r\n"
                            + v.encode() + b"\r\n" for k, v in fields.items()) + b"--b--\r\n"
            return (f"POST /v1/scans HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: multipart/form-data; "
                    f"boundary=b\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

        requests = [f"GET /v1/jobs/boom HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode(),
                    form({"uploader": "u", "path": "in/a\x00.mp4"}),
                    form({"uploader": "u", "path": "a" * 5000}),
                    form({"uploader": "u\x00", "path": "in/a.mp4"}),
                    f"GET /v1/jobs/nope HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode()]
        expected = [500, 400, 422, 400, 404]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            reader = conn.makefile("rb")
            for request, status in zip(requests, expected):
                conn.sendall(request)
                line = reader.readline()
                assert line.startswith(f"HTTP/1.1 {status} ".encode()), (request[:60], line)
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    assert not (name.lower() == "connection" and "close" in value.lower()), request[:60]
                reader.read(length)
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_private_callback_address_is_refused_at_submit(make_stack, make_client):
    """Where the platform may not call inside (the default), a callback to a loopback or private address is
    refused when the scan is submitted, not only when delivery fails; nothing is written."""
    stack = make_stack(webhook_allow_private=False)
    client = make_client(stack)
    platform = client.key("platform", "tube")
    clip = video("yao-static-5s").read_bytes()
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://localhost/hook", "http://[::1]/hook"):
        response = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "callback_url": url},
                                    files={"file": ("clip.mp4", clip)})
        reason = _error(response, 400)
        assert reason.startswith("callback_url:") and "non-public" in reason, reason
    assert _left_on_disk(stack.media_root, "uploads") == []
