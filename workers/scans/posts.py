"""A post's scan in the service: every item observed and decided in one task, against one gallery
version, and the one report stored with its findings (each naming its item).

A post is not split into segments: its items are mostly stills, and one decision over all of them
needs them together. Its pictures are compared with the platform's earlier ones (near_duplicates):
a re-post of a confirmed violation is restricted without a new review. The scan is then counted in
its uploader's history. Evidence images are not cut for posts (scans/evidence.py reads videos); the
report's evidence entries (item, time, box) point a reviewer at the item.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.policy import Repost, repost_verdict
from pipeline.post import check_items, scan_post
from pipeline.report import build_post_report
from workers.data.db import JobRow
from workers.data.keys import scan_uploader
from workers.redis_state import ensure_current
from workers.scans.server_paths import without_server_paths
from workers.scans import accounts, withdrawal
from workers.service import Service


def is_post(job: JobRow) -> bool:
    return "items" in job.params


def run(service: Service, job: JobRow) -> bool:
    """Scan the post and store its report once; True when the platform's webhook is to be sent."""
    runtime = service.runtime
    items = check_items([Path(item["path"]) for item in job.params["items"]], runtime.scanner)
    gallery = runtime.gallery
    ensure_current(gallery, service.signal)
    uploader = scan_uploader(job.principal, job.params["uploader"])  # never the platform's bare id
    result = scan_post(runtime.scanner, items, gallery, uploader, job.params.get("caption", ""),
                       bool(job.params.get("declared_ai", False)))
    repeats = accounts.repeats(service, job, result.pictures)
    result.verdict = repost_verdict(result.verdict, [
        Repost(r["item"], r["scan_id"], r["scan_item"], r["distance"], tuple(d["identity_id"] for d in r["confirmed"]))
        for r in repeats if r["confirmed"]])
    report = build_post_report(result)
    report["near_duplicates"] = repeats
    webhook = bool(job.params.get("callback_url"))
    kept = without_server_paths(report, job.params, service.media_root)  # the database keeps no server path
    if not service.jobs.complete_scan(job, kept, kept["findings"], webhook):
        return False
    accounts.record(service, job, report, result.pictures)
    for finding in report["findings"]:  # removed while this post was decided: its removal may have missed these
        identity_id = finding["identity"]["id"]
        if service.gallery_store.identity(identity_id) is None:
            withdrawal.withdraw(service, identity_id, withdrawal.REMOVED)
    return webhook
