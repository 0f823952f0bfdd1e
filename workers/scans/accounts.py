"""Uploaders as accounts: each finished scan is counted in its uploader's history (ids and counts), a
post's pictures are hashed to catch re-posts of confirmed violations, and the history becomes a
recommendation on the account through the ladder (scans/ladder.py).

An uploader is the platform's id of its user, namespaced by the platform (principal) that submits.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import quote

from pipeline.near_duplicates import Fingerprint, clusters, nearest
from workers.data.db import JobRow
from workers.data.reviews import Decision
from workers.data.uploaders import HistoryRow, ScanCounts
from workers.scans.ladder import Evidence, LadderConfig, recommend
from workers.service import Service

AI_LEVELS = ("declared", "likely")


def counts_of(report: dict) -> ScanCounts:
    """A video's or a post's report → what it adds to the history. Findings count when acted on (an
    action other than allow: an authorised uploader's own likeness does not count against it)."""
    parts = report.get("items") or [report]
    declared = any(p["synthetic"]["disclosure"]["uploader"] for p in parts)
    ai = any(p["synthetic"]["level"] in AI_LEVELS for p in parts)
    acted = Counter(f["category"] for f in report["findings"] if f["action"] != "allow")
    reposts = len({r["item"] for r in report.get("near_duplicates", []) if r["confirmed"]})
    return ScanCounts(items=len(parts), ai_declared=declared and ai, ai_undeclared=ai and not declared,
                      impersonation=acted["impersonation"], portrait_rights=acted["portrait_rights"],
                      reposts=reposts, verdict=report["verdict"]["action"])


def record(service: Service, job: JobRow, report: dict, pictures: list[tuple[int, Fingerprint]]) -> bool:
    return service.uploaders.record(job.id, job.principal, job.params["uploader"], counts_of(report), pictures)


def repeats(service: Service, job: JobRow, pictures: list[tuple[int, Fingerprint]]) -> list[dict]:
    """Each picture of this post that is a near-duplicate of a picture the platform saw before, with
    whether that earlier picture's scan holds a finding a reviewer confirmed (a confirmed violation
    re-posted is caught without a new review)."""
    if not pictures:
        return []
    known = service.uploaders.pictures(job.principal, exclude_scan=job.id)
    if not known:
        return []
    by_key = {f"{k.scan_id}/{k.item}": k for k in known}
    confirmed = _confirmed_items(service, sorted({k.scan_id for k in known}))
    out = []
    for item, fingerprint in pictures:
        for match in nearest(fingerprint, ((key, k.fingerprint) for key, k in by_key.items()))[:5]:
            earlier = by_key[match.key]
            decisions = confirmed.get((earlier.scan_id, earlier.item), [])
            out.append({"item": item, "scan_id": earlier.scan_id, "scan_item": earlier.item,
                        "distance": match.distance, "same_uploader": earlier.uploader == job.params["uploader"],
                        "confirmed": [{"decision_id": d.id, "finding_id": d.finding_id, "identity_id": d.identity_id,
                                       "reason": d.reason} for d in decisions]})
    return out


def _confirmed_items(service: Service, scan_ids: list[str]) -> dict[tuple[str, int], list[Decision]]:
    """(scan, item) → the confirmed decisions on findings shown in that item."""
    out: dict[tuple[str, int], list[Decision]] = {}
    for decision in service.reviews.confirmed_in(scan_ids):
        finding = service.jobs.finding(decision.scan_id, decision.identity_id)
        items = (finding.data.get("items") or [finding.data.get("item", 0)]) if finding is not None else []
        for item in items:
            out.setdefault((decision.scan_id, item), []).append(decision)
    return out


def history(service: Service, platform: str, uploader: str, config: LadderConfig,
            at: datetime | None = None) -> dict:
    """The uploader's counts (all kept scans, and within the ladder's window), weekly series, clusters of
    near-duplicate pictures among its posts, and the ladder's recommendation with what it rests on."""
    rows = service.uploaders.history(platform, uploader)
    start = (at or datetime.now().astimezone()) - timedelta(days=config.window_days)
    recent = [r for r in rows if r.created_at >= start]
    decisions = service.reviews.confirmed_in([r.scan_id for r in rows])
    recent_ids = {r.scan_id for r in recent}
    recent_decisions = [d for d in decisions if d.scan_id in recent_ids]
    counts = _totals(recent, recent_decisions)
    evidence = ([Evidence("confirmed_violations", d.scan_id, d.identity_id, d.finding_id, d.id)
                 for d in recent_decisions]
                + [Evidence("confirmed_violations", r.scan_id) for r in recent if r.counts.reposts]
                + [Evidence(kind, r.scan_id) for r in recent for kind in ("impersonation", "portrait_rights")
                   if getattr(r.counts, kind)]
                + [Evidence("undeclared_ai", r.scan_id) for r in recent if r.counts.ai_undeclared])
    advice = recommend(counts, evidence, config)
    pictures = service.uploaders.pictures(platform, uploader)
    return {
        "uploader": uploader, "platform": platform,
        "totals": _totals(rows, decisions), "window_days": config.window_days, "recent": counts,
        "series": _weekly(rows, decisions),
        "clusters": [{"size": len(group), "pictures": group}
                     for group in clusters([(f"{p.scan_id}/{p.item}", p.fingerprint) for p in pictures])],
        "recommendation": {"action": advice.action, "reasons": advice.reasons,
                           "rests_on": [{k: v for k, v in vars(e).items() if v is not None}
                                        for e in advice.rests_on]},
    }


def _totals(rows: list[HistoryRow], decisions: list[Decision]) -> dict[str, int]:
    return {"scans": len(rows), "items": sum(r.counts.items for r in rows),
            "ai_declared": sum(r.counts.ai_declared for r in rows),
            "undeclared_ai": sum(r.counts.ai_undeclared for r in rows),
            "impersonation": sum(r.counts.impersonation for r in rows),
            "portrait_rights": sum(r.counts.portrait_rights for r in rows),
            "reposts_of_confirmed": sum(r.counts.reposts for r in rows),
            "confirmed_violations": len(decisions) + sum(r.counts.reposts for r in rows)}


def _weekly(rows: list[HistoryRow], decisions: list[Decision]) -> list[dict]:
    """Counts per ISO week (Monday, UTC) of the scan's time; a confirmed violation in its scan's week."""
    week_of = {r.scan_id: (r.created_at - timedelta(days=r.created_at.weekday())).date().isoformat() for r in rows}
    weeks: dict[str, list[HistoryRow]] = {}
    for row in rows:
        weeks.setdefault(week_of[row.scan_id], []).append(row)
    return [{"week": week, **_totals(members, [d for d in decisions if week_of.get(d.scan_id) == week])}
            for week, members in sorted(weeks.items())]


def summary(service: Service, platform: str, uploader: str, config: LadderConfig) -> dict:
    """What the webhook carries: the window's counts and the recommendation (GET /v1/uploaders/{id} has all)."""
    full = history(service, platform, uploader, config)
    return {"recent": full["recent"], "window_days": full["window_days"], "recommendation": full["recommendation"],
            "history": f"/v1/uploaders/{quote(uploader, safe='')}"}
