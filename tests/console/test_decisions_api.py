"""Review decisions through the HTTP API, on a real scan's `review` finding: who may see and decide
a finding, the checks on a decision, the audit trail (append-only, newest wins), the queue, the
finding.decided webhook (signed with its timestamp), and the decision in the owner's findings."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from samples.services import wait_for
from tests.console.conftest import SECRET, finding_of
from workers.app import sender
from workers.data.db import Database, DecisionWebhookRow, now
from workers.data.reviews import ReviewStore
from workers.recovery import sweep
from workers.scans import webhooks
from workers.service import Service


def test_decide_a_finding_through_the_api(console_stack):
    env = console_stack
    tube, other, nba, studio = env.api("tube"), env.api("othertube"), env.api("nba"), env.api("studio")
    item = finding_of(env, "user-18")
    finding_id = item["id"]
    assert (item["scan_id"], item["identity_id"], item["action"], item["uploader"]) == \
        (env.scans["user-18"], env.yao_id, "review", "user-18")
    assert item["decision"] is None

    # Visible to the scan's platform and the likeness's owner; anyone else: 404, never 403.
    assert tube.get(f"/v1/findings/{finding_id}").json()["identity_id"] == env.yao_id
    assert nba.get(f"/v1/findings/{finding_id}").status_code == 200
    for client in (other, studio):
        assert client.get(f"/v1/findings/{finding_id}").status_code == 404
        assert client.get(f"/v1/findings/{finding_id}/decisions").status_code == 404
    assert tube.get("/v1/findings/999999").status_code == 404
    # The scan's findings with their ids, for a platform that reads reports: its own scans only.
    assert [f["id"] for f in tube.get(f"/v1/scans/{item['scan_id']}/findings").json()] == [finding_id]
    assert other.get(f"/v1/scans/{item['scan_id']}/findings").status_code == 404
    assert other.get("/v1/reviews").json()["items"] == []

    body = {"decision": "dismissed", "reason": "not_this_person", "comment": "A tall man, but not him."}
    assert other.post(f"/v1/findings/{finding_id}/decision", json=body).status_code == 404
    assert nba.post(f"/v1/findings/{finding_id}/decision", json=body).status_code == 403  # owners do not decide
    # Bad decisions are refused naming the field, and store nothing.
    wrong = tube.post(f"/v1/findings/{finding_id}/decision", json={**body, "reason": "impersonation"})
    assert wrong.status_code == 400 and wrong.json()["error"]["reason"].startswith("reason:")
    blank = tube.post(f"/v1/findings/{finding_id}/decision", json={**body, "comment": "   "})
    assert blank.status_code == 400 and blank.json()["error"]["reason"].startswith("comment:")
    nul = tube.post(f"/v1/findings/{finding_id}/decision", json={**body, "comment": "a\x00b"})
    assert nul.status_code == 400 and "control" in nul.json()["error"]["reason"]
    assert tube.post(f"/v1/findings/{finding_id}/decision", json={**body, "comment": ""}).status_code == 422
    assert tube.get(f"/v1/findings/{finding_id}/decisions").json() == []
    (undecided,) = tube.get(f"/v1/scans/{item['scan_id']}/report").json()["findings"]
    assert (undecided["finding_id"], undecided["decision"], undecided["action"]) == (finding_id, None, "review")

    decided = tube.post(f"/v1/findings/{finding_id}/decision", json=body)
    assert decided.status_code == 201, decided.text
    decision = decided.json()
    assert (decision["decision"], decision["reason"], decision["decided_by"]) == \
        ("dismissed", "not_this_person", "tube")
    assert decision["webhook"]["status"] in ("pending", "delivered")
    assert all(i["id"] != finding_id for i in tube.get("/v1/reviews").json()["items"])  # out of the queue
    # The served report carries the human outcome next to the machine's action, which stays as decided.
    (reported,) = tube.get(f"/v1/scans/{item['scan_id']}/report").json()["findings"]
    assert reported["action"] == "review" and reported["finding_id"] == finding_id
    assert (reported["decision"]["id"], reported["decision"]["decision"], reported["decision"]["reason"]) == \
        (decision["id"], "dismissed", "not_this_person")

    # The webhook: finding.decided, signed over its timestamp and body, its decision as the event id.
    calls = wait_for(lambda: [c for c in env.hooks.calls if c["event"]["event"] == "finding.decided"
                              and c["event"]["finding_id"] == finding_id] or None, 60, "finding.decided")
    call = calls[0]
    assert webhooks.verify(call["body"], call["headers"]["X-Likeness-Signature"],
                           call["headers"]["X-Likeness-Timestamp"], SECRET)
    assert call["headers"]["X-Likeness-Event-Id"] == f"decision-{decision['id']}"
    assert (call["event"]["job_id"], call["event"]["uploader"], call["event"]["decision"]) == \
        (env.scans["user-18"], "user-18", "dismissed")
    wait_for(lambda: tube.get(f"/v1/findings/{finding_id}").json()["decision"]["webhook"]["status"] == "delivered"
             or None, 30, "the delivery recorded")

    # The owner sees the decision and the dismissed look-alike.
    mine = [f for f in nba.get("/v1/findings").json() if f["id"] == finding_id]
    assert mine[0]["decision"]["reason"] == "not_this_person"
    reviews = ReviewStore(Database.open(env.stack.database_url))
    assert finding_id in [d.finding_id for d in reviews.dismissed_lookalikes("nba")]
    assert reviews.dismissed_lookalikes("studio") == []

    # A dismissed finding cannot become a reference.
    assert nba.post(f"/v1/findings/{finding_id}/reference", json={"image": 0}).status_code == 409

    # Deciding again appends (the audit trail keeps both) and the newest counts.
    again = tube.post(f"/v1/findings/{finding_id}/decision",
                      json={"decision": "confirmed", "reason": "unauthorised_use", "comment": "Second look: it is."})
    assert again.status_code == 201
    history = tube.get(f"/v1/findings/{finding_id}/decisions").json()
    assert [(d["decision"], d["comment"]) for d in history] == [
        ("dismissed", "A tall man, but not him."), ("confirmed", "Second look: it is.")]
    assert nba.get(f"/v1/findings/{finding_id}").json()["decision"]["decision"] == "confirmed"
    assert finding_id not in [d.finding_id for d in reviews.dismissed_lookalikes("nba")]

    # The owner makes the confirmed appearance a reference: an enrollment job with the same checks.
    assert tube.post(f"/v1/findings/{finding_id}/reference", json={"image": 0}).status_code == 403
    assert studio.post(f"/v1/findings/{finding_id}/reference", json={"image": 0}).status_code == 404
    before = {i["id"]: i["references"] for i in nba.get("/v1/likenesses").json()}[env.yao_id]
    added = nba.post(f"/v1/findings/{finding_id}/reference", json={"image": 0})
    assert added.status_code == 202, added.text
    job = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        nba.get(f"/v1/jobs/{added.json()['job_id']}").json()), 120, "the reference's enrollment")
    assert job["status"] == "done", job
    assert job["result"]["identity_id"] == env.yao_id and job["result"]["references_added"] == 1
    assert {i["id"]: i["references"] for i in nba.get("/v1/likenesses").json()}[env.yao_id] == before + 1
    assert nba.post(f"/v1/findings/{finding_id}/reference", json={"image": 0}).json()["job_id"] == job["job_id"]


def test_the_sweep_sends_a_decision_webhook_whose_send_was_lost(console_stack):
    """A decision stored with its webhook pending but never sent (the broker was away) is sent by
    the workers' sweep once it is stale, and delivered."""
    env = console_stack
    service = Service(env.stack.settings())
    scan_id = env.scans["user-17"]
    finding, job = service.jobs.finding(scan_id, env.yao_id), service.jobs.get(scan_id)
    lost = service.reviews.decide(finding, job.principal, "tube", "test", "confirmed", "impersonation",
                                  "Stored while the broker was away.", job.params["callback_url"])
    with service.db.transaction() as s:  # as if it had been pending for longer than stale_after_s
        s.execute(update(DecisionWebhookRow).where(DecisionWebhookRow.decision_id == lost.id)
                  .values(updated_at=now() - timedelta(hours=1)))
    lock = f"{service.settings.service.key_prefix}:sweep"

    def swept():
        service.redis.delete(lock)  # the worker's own sweeper may hold the once-per-interval lock
        return f"decision-{lost.id}" in sweep(service, sender(service.settings)) or None

    wait_for(swept, 30, "the sweep to re-send the decision's webhook", interval=0.5)
    wait_for(lambda: next((c for c in env.hooks.calls if c["event"].get("decision_id") == lost.id), None), 60,
             "the re-sent finding.decided")
    wait_for(lambda: service.reviews.latest([finding.id])[finding.id].webhook_status == "delivered" or None, 30,
             "the delivery recorded")
