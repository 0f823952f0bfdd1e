"""What a finding page shows, read from the stored finding (and, for the scan's platform, its
report): the appearances on a timeline, the evidence images, the AI evidence and disclosure.

A likeness's owner sees what the API gives it (GET /v1/findings): the finding alone, never the
scan's report, so its timeline is the finding's span and its evidence times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.data.db import FindingRow


@dataclass(frozen=True)
class Appearance:
    """One stretch of the video where the person appears (a track), placed on the timeline in %."""

    label: str
    start_s: float
    end_s: float
    similarity: float | None
    left: float
    width: float


@dataclass(frozen=True)
class EvidenceImage:
    number: int
    t_s: float
    similarity: float | None


@dataclass(frozen=True)
class Signal:
    name: str
    score: float | None
    decisive: bool
    detail: str


@dataclass(frozen=True)
class FindingView:
    finding: FindingRow
    name: str
    owner: str
    duration_s: float | None
    appearances: list[Appearance]
    images: list[EvidenceImage]
    images_reason: str | None
    reasons: list[str]
    # the scan's platform only (from the report)
    video_name: str | None = None
    uploader: str | None = None
    declared_ai: bool | None = None
    verdict: dict[str, Any] | None = None
    synthetic: dict[str, Any] | None = None
    signals: list[Signal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _place(start_s: float, end_s: float, duration_s: float | None) -> tuple[float, float]:
    if not duration_s or duration_s <= 0:
        return 0.0, 100.0
    left = max(0.0, min(100.0, 100.0 * start_s / duration_s))
    width = max(0.8, min(100.0 - left, 100.0 * (end_s - start_s) / duration_s))
    return round(left, 2), round(width, 2)


def _images(data: dict) -> tuple[list[EvidenceImage], str | None]:
    images = []
    for entry in data.get("evidence", []):
        url = entry.get("image")
        if isinstance(url, str) and url.rsplit("/", 1)[-1].isdigit():
            images.append(EvidenceImage(int(url.rsplit("/", 1)[-1]), float(entry.get("t_s", 0.0)),
                                        entry.get("similarity")))
    reason = (data.get("images") or {}).get("reason")
    return images, None if images else (reason or "no evidence image was stored")


def _detail(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v}" for k, v in detail.items() if v not in (None, "", [], {}))
    return "" if detail is None else str(detail)


def for_owner(finding: FindingRow) -> FindingView:
    """The finding as its likeness's owner sees it: the span and the evidence times."""
    data = finding.data
    images, reason = _images(data)
    left, width = _place(finding.start_s, finding.end_s, None)
    span = [Appearance("seen", finding.start_s, finding.end_s, finding.similarity, left, width)]
    return FindingView(finding, data["identity"]["name"], finding.owner, None, span, images, reason,
                       list(data.get("reasons", [])))


def for_platform(finding: FindingRow, report: dict, params: dict) -> FindingView:
    """The finding with its scan's facts (video, uploader, AI evidence, disclosure, each track)."""
    data = finding.data
    source = report
    if "item" in data and isinstance(report.get("items"), list):  # a post: the item the finding is in
        source = next((i for i in report["items"] if i.get("index") == data["item"]), report)
    duration = (source.get("video") or {}).get("duration_s")
    identity_id = finding.identity_id
    appearances = []
    tracks = list(source.get("tracks") or []) + list((source.get("character_tracks") or {}).get("tracks") or [])
    for track in tracks:
        match = track.get("match") or {}
        if match.get("identity_id") == identity_id:
            left, width = _place(track["start_s"], track["end_s"], duration)
            appearances.append(Appearance(f"track {track['track_id']}", track["start_s"], track["end_s"],
                                          match.get("similarity"), left, width))
    if not appearances:
        left, width = _place(finding.start_s, finding.end_s, duration)
        appearances.append(Appearance("seen", finding.start_s, finding.end_s, finding.similarity, left, width))
    images, reason = _images(data)
    synthetic = source.get("synthetic") or {}
    signals = [Signal(s["name"], s.get("score"), bool(s.get("decisive")), _detail(s.get("detail")))
               for s in synthetic.get("signals", [])]
    return FindingView(finding, data["identity"]["name"], finding.owner, duration, appearances, images, reason,
                       list(data.get("reasons", [])), video_name=params.get("video_name"),
                       uploader=params.get("uploader"), declared_ai=bool(params.get("declared_ai", False)),
                       verdict=report.get("verdict"), synthetic=synthetic, signals=signals,
                       warnings=list(report.get("warnings", [])))
