"""The HTTP API's contract without workers: keys and roles, JSON errors, size limits, path
traversal (paths resolve in the platform's folder), idempotent submission, OpenAPI, a submission
that survives an unreachable Redis, and a likeness's fields validated on registration and changed by its owner alone."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from gallery.store import GalleryStore
from samples.photos import package_photo
from samples.services import copy_into, free_port, video
from workers.api import pages
from workers.app import sender
from workers.data.db import FindingRow, JobRow, now
from workers.recovery import sweep
from workers.service import Service


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["reason"]
    return body["error"]["reason"]


def test_keys_and_roles(make_stack, make_client):
    client = make_client(make_stack())
    http = client.http
    assert "missing API key" in _error(http.get("/v1/likenesses"), 401)
    assert "invalid" in _error(http.get("/v1/likenesses", headers={"X-API-Key": "lk_nope"}), 401)
    platform, owner = client.key("platform", "tube"), client.key("rights_holder", "nba")
    bearer = {"Authorization": "Bearer " + owner["X-API-Key"]}
    assert http.get("/v1/likenesses", headers=bearer).json() == []
    assert "rights_holder" in _error(http.get("/v1/likenesses", headers=platform), 403)
    assert "platform" in _error(http.post("/v1/scans", headers=owner, data={"uploader": "u", "path": "x"}), 403)
    _error(http.post("/v1/keys", headers=platform, json={"role": "admin", "principal": "me"}), 403)
    _error(http.get("/v1/scans/123/report", headers=client.admin), 403)

    listed = http.get("/v1/keys", headers=client.admin).json()
    assert {(k["role"], k["principal"]) for k in listed} == {("admin", "ops"), ("platform", "tube"),
                                                            ("rights_holder", "nba")}
    assert all("key" not in k and k["created_at"].endswith("Z") for k in listed)
    tube = next(k for k in listed if k["principal"] == "tube")
    assert http.delete(f"/v1/keys/{tube['id']}", headers=client.admin).status_code == 204
    _error(http.delete(f"/v1/keys/{tube['id']}", headers=client.admin), 404)
    assert "revoked" in _error(http.get("/v1/jobs/x", headers=platform), 401)
    assert "role" in _error(http.post("/v1/keys", headers=client.admin, json={"role": "root", "principal": "x"}), 422)


def test_submission_errors_are_json_with_a_reason(make_stack, make_client, tmp_path):
    stack = make_stack(max_upload_bytes=200_000, max_reference_bytes=50_000, max_references=2)
    client = make_client(stack)
    http, platform, owner = client.http, client.key("platform", "tube"), client.key("rights_holder", "nba")
    clip = copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/in/clip.mp4")  # tube's folder
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x" * 100)
    os.symlink(outside, stack.media_root / "platforms" / "tube" / "in" / "link.mp4")

    def scan(**data):
        return http.post("/v1/scans", headers=platform, data={"uploader": "u", **data})

    assert "without '..'" in _error(scan(path="../secret.mp4"), 400)
    assert "without '..'" in _error(scan(path=str(clip)), 400)  # absolute
    assert "leaves your platform's folder" in _error(scan(path="in/link.mp4"), 400)
    assert "no file" in _error(scan(path="in/missing.mp4"), 404)
    assert "exactly one" in _error(scan(), 400)
    assert "http(s)" in _error(scan(path="in/clip.mp4", callback_url="file:///etc/passwd"), 400)
    assert _error(http.post("/v1/scans", headers=platform, data={"path": "in/clip.mp4"}), 422) == \
        "uploader: Field required"

    big = b"\0" * 300_000
    assert "limit" in _error(http.post("/v1/scans", headers=platform, data={"uploader": "u"},
                                       files={"file": ("big.mp4", big)}), 413)

    def chunks():  # no Content-Length: the body limit (upload limit + 1 MiB of form) holds while it arrives
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(200):
            yield b"\0" * 10_000

    chunked = http.post("/v1/scans", headers={**platform, "Content-Type": "multipart/form-data; boundary=x"},
                        content=chunks())
    assert "limit" in _error(chunked, 413)
    assert not any((stack.media_root / "uploads").glob("*")), "a refused upload must leave nothing behind"

    photo = package_photo("yaoming.jpg").read_bytes()
    register = lambda files, **data: http.post("/v1/likenesses", headers=owner,  # noqa: E731
                                               data={"name": "Yao", **data}, files=files)
    assert "kind" in _error(register([("files", ("a.jpg", photo))], kind="robot"), 400)
    assert "policy" in _error(register([("files", ("a.jpg", photo))], policy="sometimes"), 400)
    assert "at most 2" in _error(register([("files", (f"{i}.jpg", photo)) for i in range(3)]), 413)
    assert "limit" in _error(register([("files", ("a.jpg", b"\xff" * 60_000))]), 413)
    assert "no likeness" in _error(http.delete("/v1/likenesses/nope", headers=owner), 404)


def test_same_upload_is_one_job(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    platform = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/a.mp4")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/b.mp4")
    first = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "a.mp4"})
    same_bytes = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "b.mp4"})
    other_uploader = client.http.post("/v1/scans", headers=platform, data={"uploader": "v", "path": "a.mp4"})
    assert (first.status_code, same_bytes.status_code, other_uploader.status_code) == (202, 200, 202)
    assert same_bytes.json()["id"] == first.json()["id"] != other_uploader.json()["id"]
    keyed = [client.http.post("/v1/scans", headers={**platform, "Idempotency-Key": "upload-1"},
                              data={"uploader": "w", "path": name}) for name in ("a.mp4", "b.mp4")]
    assert [r.status_code for r in keyed] == [202, 200] and keyed[0].json()["id"] == keyed[1].json()["id"]


def test_openapi_and_health(make_stack, make_client):
    client = make_client(make_stack())
    schema = client.http.get("/openapi.json").json()
    assert {"/v1/scans", "/v1/scans/{scan_id}/report", "/v1/jobs/{job_id}", "/v1/likenesses",
            "/v1/likenesses/{identity_id}", "/v1/findings", "/v1/keys", "/v1/keys/{key_id}", "/v1/health"} \
        <= set(schema["paths"])
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])
    assert client.http.get("/docs").status_code == 200
    assert client.http.get("/v1/health").json() == {"database": "ok", "redis": "ok"}


def test_submission_survives_unreachable_redis(make_stack, make_client, redis_url):
    """Redis down past the publish retries: the job is stored anyway, and the sweep sends it."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    stack = make_stack(redis=dead, publish_retry_s=0.0, redis_timeout_s=0.5, stale_after_s=5.0)
    client = make_client(stack)
    platform = client.key("platform", "tube")
    copy_into(stack.media_root, video("yao-static-5s"), "platforms/tube/a.mp4")
    submitted = client.http.post("/v1/scans", headers=platform, data={"uploader": "u", "path": "a.mp4"})
    assert submitted.status_code == 202 and submitted.json()["status"] == "queued"
    assert client.http.get("/v1/health").status_code == 503
    job_id = submitted.json()["id"]

    stack.redis_url = redis_url  # Redis is back; a worker's sweep finds the job in the database
    settings = stack.settings()
    service = Service(settings)
    assert sweep(service, sender(settings)) == []  # stored a moment ago: not stale yet
    with service.db.transaction() as s:
        s.get(JobRow, job_id).updated_at = now() - timedelta(seconds=10)
    service.redis.delete(f"{settings.service.key_prefix}:sweep")  # the first sweep's once-per-interval lock
    assert sweep(service, sender(settings)) == [job_id]
    service_config = settings.service  # new scans wait in the queue's list for priority 6
    assert redis.Redis.from_url(redis_url).llen(f"{service_config.key_prefix}:{service_config.queue}\x06\x166") == 1


def test_likeness_registration_refuses_bad_thresholds_and_uploaders(make_stack, make_client):
    stack = make_stack()
    client = make_client(stack)
    http, owner = client.http, client.key("rights_holder", "nba")
    photo = package_photo("yaoming.jpg").read_bytes()

    def register(**data):
        return http.post("/v1/likenesses", headers=owner, data={"name": "Yao", **data},
                         files=[("files", ("a.jpg", photo))])

    assert "from -1 to 1, not 1.5" in _error(register(match_threshold="1.5"), 400)
    assert "from -1 to 1, not nan" in _error(register(match_threshold="nan"), 400)
    assert _error(register(match_threshold="high"), 422).startswith("match_threshold:")
    assert "for kind person" in _error(register(match_threshold="0.5", kind="character"), 400)
    for plain in ("user-17", "tube:", ":user-17", " tube:user-17"):
        assert "'<platform>:<uploader id>'" in _error(register(authorized_uploaders=["tube:ok", plain]), 400)
    assert not (stack.media_root / "enroll").exists(), "a refused registration must leave nothing behind"

    assert "principal" in _error(http.post("/v1/keys", headers=client.admin,
                                           json={"role": "platform", "principal": "tube:nba"}), 422)
    with pytest.raises(ValueError, match="must not contain ':'"):
        client.keys.issue("rights_holder", "tube:nba")


def test_owner_changes_policy_uploaders_and_threshold(make_stack, make_client):
    """PATCH changes what decisions read, for the owner only, and moves the gallery version."""
    stack = make_stack()
    client = make_client(stack)
    http = client.http
    nba, studio, platform = client.key("rights_holder", "nba"), client.key("rights_holder", "studio"), \
        client.key("platform", "tube")
    store = GalleryStore(client.keys.db.engine)
    # Registered before uploaders were namespaced: a plain id, still listed as it was.
    info, _, version = store.add_identity("Yao Ming", "person", "nba", "no_use", ["user-17"], [])
    url = f"/v1/likenesses/{info.id}"
    assert http.get("/v1/likenesses", headers=nba).json() == [
        {"id": info.id, "name": "Yao Ming", "kind": "person", "owner": "nba", "policy": "no_use",
         "authorized_uploaders": ["user-17"], "match_threshold": None, "references": 0}]

    assert "no likeness" in _error(http.patch(url, headers=studio, json={"policy": "allow"}), 404)
    assert "rights_holder" in _error(http.patch(url, headers=platform, json={"policy": "allow"}), 403)
    assert "nothing to change" in _error(http.patch(url, headers=nba, json={}), 400)
    assert "from -1 to 1" in _error(http.patch(url, headers=nba, json={"match_threshold": 2}), 400)
    assert "'<platform>:<uploader id>'" in _error(http.patch(url, headers=nba, json={"authorized_uploaders": ["u"]}),
                                                  400)
    assert "must be a list" in _error(http.patch(url, headers=nba, json={"authorized_uploaders": None}), 400)
    assert "policy must be one of" in _error(http.patch(url, headers=nba, json={"policy": "sometimes"}), 400)
    assert _error(http.patch(url, headers=nba, json={"owner": "studio"}), 422).startswith("owner:")
    assert store.version() == version

    changed = http.patch(url, headers=nba, json={"policy": "no_ai", "authorized_uploaders": ["tube:user-17"],
                                                  "match_threshold": 0.5})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["policy"], changed.json()["authorized_uploaders"], changed.json()["match_threshold"]) == \
        ("no_ai", ["tube:user-17"], 0.5)
    assert store.version() == version + 1
    assert Service(stack.settings()).signal.announced() == version + 1  # workers reload before deciding
    cleared = http.patch(url, headers=nba, json={"match_threshold": None}).json()
    assert (cleared["policy"], cleared["authorized_uploaders"], cleared["match_threshold"]) == \
        ("no_ai", ["tube:user-17"], None)
    assert http.get("/v1/likenesses", headers=nba).json() == [cleared]
    assert http.get("/v1/likenesses", headers=studio).json() == []


def test_platform_lists_its_scans_a_page_at_a_time(make_stack, make_client):
    """GET /v1/scans: the caller's scans only, filtered, newest first, and a cursor that continues
    where its page ended though newer scans arrived; a bad cursor is a 400 naming it."""
    stack = make_stack()
    client = make_client(stack)
    http, tube, other = client.http, client.key("platform", "tube"), client.key("platform", "other")
    jobs = Service(stack.settings()).jobs
    start = now() - timedelta(hours=1)

    def scan(n: int, principal: str = "tube", verdict: str | None = None, error: str | None = None) -> str:
        job, _ = jobs.create("scan", principal, {"video": f"/srv/media/v{n}.mp4", "uploader": f"user-{n}"})
        with jobs.db.transaction() as s:
            s.get(JobRow, job.id).created_at = start + timedelta(minutes=n)
        if verdict:
            jobs.complete_scan(job, {"verdict": {"action": verdict}, "gallery_version": 1, "findings": []}, [],
                               webhook=False)
        if error:
            jobs.fail(job.id, error)
        return job.id

    ids = [scan(0, verdict="allow"), scan(1, verdict="block"), scan(2, error="decode: /srv/media/secret/v2.mp4 broken"),
           scan(3), scan(4, verdict="block")]
    scan(5, principal="other", verdict="block")

    page = http.get("/v1/scans", headers=tube).json()
    assert page["total"] == 5 and page["next_cursor"] is None
    assert [item["scan_id"] for item in page["items"]] == ids[::-1]
    newest, failed = page["items"][0], page["items"][2]
    assert (newest["status"], newest["verdict"], newest["uploader"], newest["error"]) == \
        ("done", "block", "user-4", None)
    assert newest["created_at"].endswith("Z") and newest["finished_at"]
    assert (failed["status"], failed["verdict"], failed["error"]) == ("failed", None, "decode: v2.mp4 broken")
    assert page["items"][1]["status"] == "queued" and page["items"][1]["finished_at"] is None

    def listed(**query):
        answer = http.get("/v1/scans", headers=tube, params=query)
        assert answer.status_code == 200, answer.text
        return [item["scan_id"] for item in answer.json()["items"]], answer.json()["total"]

    assert listed(verdict="block") == ([ids[4], ids[1]], 2)
    assert listed(status="failed") == ([ids[2]], 1)
    assert listed(status="done", verdict="allow") == ([ids[0]], 1)
    assert listed(since=(start + timedelta(minutes=3)).isoformat()) == ([ids[4], ids[3]], 2)
    assert listed(since=(start + timedelta(minutes=3)).replace(tzinfo=None).isoformat()) == ([ids[4], ids[3]], 2)
    assert http.get("/v1/scans", headers=other).json()["total"] == 1

    first = http.get("/v1/scans", headers=tube, params={"limit": 2}).json()
    assert [i["scan_id"] for i in first["items"]] == ids[:2:-1] and first["total"] == 5 and first["next_cursor"]
    scan(9, verdict="allow")  # newer than everything: not in the pages that follow
    second = http.get("/v1/scans", headers=tube, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["scan_id"] for i in second["items"]] == [ids[2], ids[1]] and second["total"] == 6
    third = http.get("/v1/scans", headers=tube, params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [i["scan_id"] for i in third["items"]] == [ids[0]] and third["next_cursor"] is None

    assert _error(http.get("/v1/scans", headers=tube, params={"since": "0001-01-01T00:00:00+05:00"}),
                  400).startswith("since:")
    forged = pages.encode(start, "a\u0000b")
    for bad in ("nope", "eyJ0IjogMX0", first["next_cursor"][:-3], forged, pages.encode(start, 7)):
        assert _error(http.get("/v1/scans", headers=tube, params={"cursor": bad}), 400).startswith("cursor:")
    assert _error(http.get("/v1/scans", headers=tube, params={"limit": 201}), 422).startswith("limit:")
    assert _error(http.get("/v1/scans", headers=tube, params={"verdict": "maybe"}), 422).startswith("verdict:")
    assert "platform" in _error(http.get("/v1/scans", headers=client.key("rights_holder", "nba")), 403)


def test_owner_pages_through_findings_with_a_cursor(make_stack, make_client):
    """GET /v1/findings: the body stays a list; X-Total-Count and X-Next-Cursor page it newest first,
    `since` filters, and the deprecated `offset` still skips."""
    stack = make_stack()
    client = make_client(stack)
    http, nba = client.http, client.key("rights_holder", "nba")
    jobs = Service(stack.settings()).jobs
    start = now() - timedelta(hours=1)

    def finding(identity: str, owner: str = "nba") -> dict:
        return {"identity": {"id": identity, "owner": owner}, "category": "real", "action": "block",
                "confidence": 0.9, "similarity": 0.7, "start_s": 0.0, "end_s": 1.0}

    def scan(n: int, *found: dict) -> str:
        job, _ = jobs.create("scan", "tube", {"video": f"/srv/v{n}.mp4", "uploader": "u"})
        jobs.complete_scan(job, {"verdict": {"action": "block"}, "gallery_version": 1, "findings": list(found)},
                           list(found), webhook=False)
        with jobs.db.transaction() as s:
            for row in s.scalars(select(FindingRow).where(FindingRow.scan_id == job.id)):
                row.created_at = start + timedelta(minutes=n)
        return job.id

    scans = [scan(0, finding("yao")), scan(1, finding("yao"), finding("kobe")), scan(2, finding("kobe")),
             scan(3, finding("yao"), finding("x", owner="studio"))]

    def get(**query):
        answer = http.get("/v1/findings", headers=nba, params=query)
        assert answer.status_code == 200, answer.text
        return ([(f["scan_id"], f["identity_id"]) for f in answer.json()], int(answer.headers["X-Total-Count"]),
                answer.headers.get("X-Next-Cursor"))

    everything, total, cursor = get()
    assert total == 5 and cursor is None and [s for s, _ in everything] == [scans[3], scans[2], scans[1], scans[1],
                                                                           scans[0]]
    assert get(identity_id="yao")[:2] == ([(scans[3], "yao"), (scans[1], "yao"), (scans[0], "yao")], 3)
    assert get(since=(start + timedelta(minutes=2)).isoformat())[:2] == ([(scans[3], "yao"), (scans[2], "kobe")], 2)
    assert get(limit=2, offset=1)[0] == everything[1:3]  # deprecated, still honoured

    first, total, cursor = get(limit=2)
    assert first == everything[:2] and total == 5 and cursor
    newer = scan(9, finding("yao"))  # found after the first page: not in the pages that follow
    second, total, cursor = get(limit=2, cursor=cursor)
    assert second == everything[2:4] and total == 6 and cursor
    assert get(limit=2, cursor=cursor)[::2] == (everything[4:], None)
    assert get(limit=1)[0] == [(newer, "yao")]
    assert _error(http.get("/v1/findings", headers=nba, params={"cursor": pages.encode(start, "abc")}),
                  400).startswith("cursor:")
    assert http.get("/v1/findings", headers=client.key("rights_holder", "studio")).headers["X-Total-Count"] == "1"


def test_the_review_queue_pages_newest_first_or_surest_first(make_stack, make_client):
    """GET /v1/reviews: findings waiting for review, newest first by default; order=severity puts the
    highest confidence first (ties newest first), and its cursors page in that order only."""
    stack = make_stack()
    client = make_client(stack)
    http, tube = client.http, client.key("platform", "tube")
    jobs = Service(stack.settings()).jobs
    start = now() - timedelta(hours=1)

    def scan(minute: int, confidence: float, action: str = "review") -> str:
        found = {"identity": {"id": "yao", "owner": "nba"}, "category": "impersonation", "action": action,
                 "confidence": confidence, "similarity": 0.6, "start_s": 0.0, "end_s": 1.0}
        job, _ = jobs.create("scan", "tube", {"video": f"/srv/q{minute}.mp4", "uploader": "u"})
        jobs.complete_scan(job, {"verdict": {"action": action}, "gallery_version": 1, "findings": [found]},
                           [found], webhook=False)
        with jobs.db.transaction() as s:
            for row in s.scalars(select(FindingRow).where(FindingRow.scan_id == job.id)):
                row.created_at = start + timedelta(minutes=minute)
        return job.id

    ids = {(minute, confidence): scan(minute, confidence) for minute, confidence in
           ((0, 0.55), (1, 0.9), (2, 0.7), (3, 0.9), (4, 0.6))}
    scan(5, 0.99, action="block")  # acted on without review: never queued

    def pages_of(**query):
        seen, cursor = [], None
        while True:
            paging = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            answer = http.get("/v1/reviews", headers=tube, params={**query, **paging})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["total"] == 5
            seen += [i["scan_id"] for i in body["items"]]
            if not (cursor := body["next_cursor"]):
                return seen

    by = lambda *keys: [ids[k] for k in keys]  # noqa: E731
    assert pages_of() == by((4, 0.6), (3, 0.9), (2, 0.7), (1, 0.9), (0, 0.55))
    assert pages_of(order="severity") == by((3, 0.9), (1, 0.9), (2, 0.7), (4, 0.6), (0, 0.55))
    newest_cursor = http.get("/v1/reviews", headers=tube, params={"limit": 2}).json()["next_cursor"]
    answer = http.get("/v1/reviews", headers=tube, params={"order": "severity", "cursor": newest_cursor})
    assert _error(answer, 400).startswith("cursor:")
    assert http.get("/v1/reviews", headers=tube, params={"order": "loudest"}).status_code == 422


def test_a_failed_scan_with_a_callback_has_its_webhook_pending(make_stack, make_client):
    """Failing a scan with a callback URL makes its scan.failed webhook pending in the same step (the
    sweep re-sends pending webhooks of failed jobs too); without a callback there is none."""
    stack = make_stack()
    client = make_client(stack)
    jobs = Service(stack.settings()).jobs
    hooked, _ = jobs.create("scan", "tube", {"video": "/v.mp4", "uploader": "u", "callback_url": "http://h/x"})
    plain, _ = jobs.create("scan", "tube", {"video": "/v.mp4", "uploader": "u", "callback_url": None})
    assert jobs.fail(hooked.id, "scan: not a video") and jobs.fail(plain.id, "scan: not a video")
    assert (jobs.get(hooked.id).webhook_status, jobs.get(plain.id).webhook_status) == ("pending", None)
    assert not jobs.fail(hooked.id, "again")  # finished already: nothing changes
    assert hooked.id in [job.id for job in jobs.stale(timedelta(seconds=-1))]
    tube = client.key("platform", "tube")
    assert client.job(hooked.id, tube)["webhook"] == {"status": "pending", "attempts": 0, "error": None}
