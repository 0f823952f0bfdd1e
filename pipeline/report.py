"""ScanResult → the report JSON of DESIGN.md (stable keys; more may be added)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import cv2

from pipeline.characters import CharacterResult, CharacterTrack
from pipeline.policy import SEVERITY, Action, Finding
from pipeline.post import PostResult
from pipeline.scan import ScanResult
from pipeline.types import IdentityInfo, Track, TrackMatch

MAX_EVIDENCE = 5


def _r(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


def _identity(info: IdentityInfo) -> dict:
    return {"id": info.id, "name": info.name, "kind": info.kind, "owner": info.owner}


def _track(track: Track, match: TrackMatch, face_swap: dict[int, float]) -> dict:
    matched = None
    if match.identity is not None:
        matched = {"identity_id": match.identity.id, "name": match.identity.name, "kind": match.identity.kind,
                   "similarity": _r(match.similarity)}
    return {
        "track_id": track.track_id, "start_s": _r(track.start_s), "end_s": _r(track.end_s),
        "faces": len(track.faces), "usable_faces": len(track.usable_faces), "match": matched,
        "decision": {"status": match.status, "reason": match.reason,
                     "candidate": match.candidate.name if match.candidate else None,
                     "similarity": _r(match.similarity), "margin": _r(match.margin),
                     "vote_fraction": _r(match.vote_fraction)},
        "face_swap": _r(face_swap[track.track_id]) if track.track_id in face_swap else None,
    }


def _evidence(finding: Finding) -> list[dict]:
    """The best frames of the finding: usable faces with the highest similarity."""
    items: list[dict] = []
    for track, match in zip(finding.tracks, finding.matches):
        if isinstance(track, CharacterTrack):  # image path: its best crop per frame
            items += [{"t_s": _r(h.t_s), "bbox": list(h.box), "similarity": _r(h.similarity),
                       "track_id": track.track_id, "region": h.region} for h in track.hits]
        for face, sim in zip(track.usable_faces, match.face_similarities):
            items.append({"t_s": _r(face.t_s), "bbox": [_r(v, 1) for v in face.bbox], "similarity": _r(sim),
                          "track_id": track.track_id})
    items.sort(key=lambda e: e["similarity"], reverse=True)
    return items[:MAX_EVIDENCE]


def _finding(finding: Finding, characters: CharacterResult | None) -> dict:
    identity = _identity(finding.identity)
    if characters is not None and finding.identity.id in characters.cast:
        identity["played_by"] = list(characters.cast[finding.identity.id])
    return {
        "identity": identity, "category": finding.category, "confidence": finding.confidence,
        "start_s": _r(min(t.start_s for t in finding.tracks)), "end_s": _r(max(t.end_s for t in finding.tracks)),
        "similarity": _r(finding.match.similarity), "status": finding.match.status,
        "tracks": [t.track_id for t in finding.tracks], "evidence": _evidence(finding),
        "action": finding.action.value, "reasons": finding.reasons,
    }


def _character_tracks(characters: CharacterResult | None) -> dict | None:
    """The image path's tracks, as face tracks are reported; None when it did not run (no character
    registered)."""
    if characters is None:
        return None
    tracks = []
    for track, match in zip(characters.tracks, characters.matches):
        entry = {k: v for k, v in _track(track, match, {}).items() if k not in ("faces", "usable_faces", "face_swap")}
        tracks.append({**entry, "frames": len(track.hits)})
    return {"frames_embedded": characters.frames_embedded, "crops_embedded": characters.crops_embedded,
            "tracks": tracks}


def build_report(result: ScanResult) -> dict:
    info = result.info
    return {
        "video": {"path": str(info.path), "duration_s": _r(info.duration_s), "fps": _r(info.fps, 2),
                  "width": info.width, "height": info.height, "rotation": info.rotation, "codec": info.codec,
                  "frames_sampled": result.frames_sampled, "frames_decoded": result.decode.decoded,
                  "scene_cuts": result.decode.scene_cuts,
                  "segment": {"start_s": result.segment[0], "end_s": result.segment[1]}},
        "provenance": result.provenance.to_dict(),
        "synthetic": {"score": result.synthetic.score, "level": result.ai.level.value,
                      "declared": result.ai.level.value == "declared", "label_present": result.ai.labelled,
                      "disclosure": {**asdict(result.ai.disclosure), "labelled": result.ai.disclosure.labelled},
                      "signals": [{"name": s.name, "score": None if s.score is None else _r(s.score),
                                   "weight": s.weight, "detail": s.detail, "decisive": s.decisive}
                                  for s in result.synthetic.signals]},
        "tracks": [_track(t, m, result.synthetic.face_swap) for t, m in zip(result.tracks, result.matches)],
        "faces_dropped": result.dropped_faces,
        "findings": [_finding(f, result.characters) for f in result.findings],
        "character_tracks": _character_tracks(result.characters),
        "verdict": {"action": result.verdict.action.value, "reasons": result.verdict.reasons},
        "gallery_version": result.gallery_version,
        "warnings": result.warnings,
        "timings_ms": {k: _r(v, 1) for k, v in sorted(result.timings_ms.items())},
    }


def build_post_report(result: PostResult) -> dict:
    """One report for a post: each item's own report (as a video's, `video` describing the file, with its
    findings), the declaration read, the post's one verdict, and at the top one finding per likeness: its
    most severe item's (`item`), naming every item it was found in (`items`)."""
    items = []
    findings: dict[str, dict] = {}
    for item, scanned in zip(result.items, result.results):
        report = build_report(scanned)
        report["video"]["kind"] = item.kind
        items.append({"index": item.index, "kind": item.kind, **report})
        for finding in report["findings"]:
            known = findings.get(finding["identity"]["id"])
            seen_in = (known["items"] if known else []) + [item.index]
            if known is None or (SEVERITY[Action(finding["action"])], finding["confidence"]) > \
                    (SEVERITY[Action(known["action"])], known["confidence"]):
                known = {**finding, "item": item.index}
            findings[finding["identity"]["id"]] = {**known, "items": seen_in}
    declaration = result.declaration
    return {
        "post": {"items": len(result.items), "kinds": [i.kind for i in result.items],
                 "caption_chars": result.caption_chars,
                 "declaration": {"declared": declaration.declared, "declared_field": declaration.declared_field,
                                 "caption": list(declaration.caption)}},
        "items": items,
        "findings": list(findings.values()),
        "verdict": {"action": result.verdict.action.value, "reasons": result.verdict.reasons},
        "gallery_version": result.gallery_version,
        "warnings": result.warnings,
    }


def write_thumbnails(result: ScanResult, directory: Path) -> dict[int, Path]:
    """Save each finding's best aligned face crop as evidence for a reviewer."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for finding in result.findings:
        for track in finding.tracks:
            if track.thumbnail is not None:
                path = directory / f"track-{track.track_id}.jpg"
                cv2.imwrite(str(path), track.thumbnail)
                written[track.track_id] = path
    return written
