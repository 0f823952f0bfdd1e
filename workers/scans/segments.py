"""Long videos as time segments: where to cut, and how segment results become one scan.

Cuts fall on multiples of the sampling interval, so a segmented scan samples the same instants
as a whole one. Each segment is only observed (`Scanner.observe`); the merge builds one
Observation of the whole video: face tracks cut by a boundary are joined by the tracker's own link
rule (see `_link_score`), and the character path's samples are pooled, so its own rule links a
character across a cut. `Scanner.decide`, the in-process scan's decision step, then decides it once
against one gallery version.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pipeline.config import TrackingConfig
from pipeline.faces.identify import GallerySearcher
from pipeline.provenance.reader import Provenance
from pipeline.scan import CharacterSamples, Observation, Scanner, ScanResult
from pipeline.synthetic.analyzer import SyntheticConfig, fuse
from pipeline.faces.tracking import iou
from pipeline.types import Signal, Track, VideoInfo
from pipeline.video import DecodeStats
from workers.scans.codec import SegmentPart

_APPEARANCE_FACES = 5  # faces at a track's end (or start) that stand for its appearance there


@dataclass(frozen=True)
class Segment:
    number: int
    start_s: float
    end_s: float | None  # None: to the end of the video


def plan_segments(duration_s: float, segment_s: float, interval_s: float) -> list[Segment]:
    """About `segment_s` long pieces; a video shorter than 1.5 segments stays whole."""
    if duration_s < 1.5 * segment_s:
        return [Segment(0, 0.0, None)]
    count = round(duration_s / segment_s)
    step = duration_s / count
    cuts = sorted({round(math.floor(k * step / interval_s) * interval_s, 6) for k in range(1, count)})
    starts, ends = [0.0, *cuts], [*cuts, None]
    return [Segment(i, s, e) for i, (s, e) in enumerate(zip(starts, ends))]


def _appearance(faces) -> np.ndarray | None:
    """Mean embedding of these faces, preferring usable ones; None when none was embedded."""
    embedded = [f for f in faces if f.embedding is not None]
    chosen = [f for f in embedded if f.quality.usable] or embedded
    if not chosen:
        return None
    mean = np.mean([f.embedding for f in chosen], axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _link_score(tail: Track, head: Track, config: TrackingConfig) -> float | None:
    """How well `head` continues `tail` by the tracker's rule, or None when it would not link them:
    box overlap with moderate embedding agreement, strong agreement alone, or (where one side has
    no embedding near the boundary) strong overlap alone."""
    if not 0 <= head.start_s - tail.end_s <= config.max_gap_s:
        return None
    overlap = iou(tail.faces[-1].bbox, head.faces[0].bbox)
    tail_look = _appearance(tail.embedded_faces[-_APPEARANCE_FACES:])
    head_look = _appearance(head.embedded_faces[:_APPEARANCE_FACES])
    if tail_look is None or head_look is None:
        return 1.0 + overlap if overlap >= config.reuse_iou else None
    sim = float(tail_look @ head_look)
    if (overlap >= config.min_iou and sim >= config.link_similarity) or sim >= config.relink_similarity:
        return sim + overlap
    return None


def _links(tails: list[Track], heads: list[Track], config: TrackingConfig) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (tail, head), best first, that the tracker would have linked."""
    candidates = []
    for ti, tail in enumerate(tails):
        for hi, head in enumerate(heads):
            score = _link_score(tail, head, config)
            if score is not None:
                candidates.append((score, ti, hi))
    used_tails, used_heads, pairs = set(), set(), []
    for _, ti, hi in sorted(candidates, reverse=True):
        if ti not in used_tails and hi not in used_heads:
            used_tails.add(ti)
            used_heads.add(hi)
            pairs.append((ti, hi))
    return pairs


def join_tracks(segments: list[list[Track]], config: TrackingConfig) -> list[Track]:
    """Tracks of consecutive segments, in time order, with those cut by a boundary joined.

    A track may cross several boundaries. The result is renumbered 1..n by start time.
    """
    chains: list[Track] = []
    for tracks in segments:
        if not chains:
            chains = [replace(t, faces=list(t.faces)) for t in tracks]
            continue
        pairs = _links(chains, tracks, config)
        joined_heads = set()
        for ti, hi in pairs:
            chains[ti].faces.extend(tracks[hi].faces)
            joined_heads.add(hi)
        chains += [replace(t, faces=list(t.faces)) for hi, t in enumerate(tracks) if hi not in joined_heads]
    ordered = sorted(chains, key=lambda t: (t.start_s, t.end_s))
    return [replace(t, track_id=i) for i, t in enumerate(ordered, start=1)]


def merge_signals(per_segment: list[list[Signal]], track_ids: list[dict[int, int]]) -> list[Signal]:
    """One signal per name: a decisive one from any segment wins, else the mean of the scores.
    Per-track scores move to the merged track ids (`track_ids`: per segment, local id -> merged
    id); a merged track keeps its highest score."""
    by_name: dict[str, list[Signal]] = {}
    for signals in per_segment:
        for signal in signals:
            by_name.setdefault(signal.name, []).append(signal)
    per_track: dict[str, dict[int, float]] = {}
    for i, signals in enumerate(per_segment):
        mapping = track_ids[i]
        for signal in signals:
            scores = per_track.setdefault(signal.name, {})
            for local, score in signal.tracks.items():
                if local in mapping:
                    scores[mapping[local]] = max(score, scores.get(mapping[local], 0.0))
    merged = []
    for name, found in by_name.items():
        decisive = [s for s in found if s.decisive]
        scored = [s for s in found if s.score is not None]
        if decisive:  # one segment's mark or label is the video's; what each disclosed adds up
            disclosed = tuple(dict.fromkeys(name for s in decisive for name in s.discloses))
            merged.append(replace(decisive[0], discloses=disclosed))
        elif scored and per_track.get(name):  # a face-level signal: its worst track, wherever it is
            best = max(scored, key=lambda s: s.score)
            merged.append(Signal(name, max(per_track[name].values()), best.weight,
                                 f"worst track over {len(scored)} segments: {best.detail}", False, per_track[name]))
        elif scored:
            mean = float(np.mean([s.score for s in scored]))
            best = max(scored, key=lambda s: s.score)
            merged.append(Signal(name, mean, best.weight,
                                 f"mean over {len(scored)} segments; highest: {best.detail}", False))
        else:
            merged.append(found[0])
    return merged


def _decode_totals(parts: list[SegmentPart]) -> DecodeStats:
    total = DecodeStats()
    for part in parts:
        total.add(part.decode)
    return total


def _sum(dicts: list[dict]) -> dict:
    total: dict = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0) + value
    return total


def _pooled_characters(parts: list[SegmentPart]) -> CharacterSamples | None:
    """The character samples of segments in time order, pooled; None when no segment ran the
    character path (no character was registered while it was scanned)."""
    found = [p.characters for p in parts if p.characters is not None]
    if not found:
        return None
    return CharacterSamples([s for c in found for s in c.samples], sum(c.frames_embedded for c in found))


def merge_observations(info: VideoInfo, provenance: Provenance, parts: list[SegmentPart], tracking: TrackingConfig,
                       synthetic: SyntheticConfig) -> Observation:
    """One Observation of the whole video from its segments (in any order)."""
    parts = sorted(parts, key=lambda p: p.start_s)
    tracks = join_tracks([p.tracks for p in parts], tracking)
    merged_id = {id(face): t.track_id for t in tracks for face in t.faces}
    track_ids = [{t.track_id: merged_id[id(t.faces[0])] for t in p.tracks if t.faces and id(t.faces[0]) in merged_id}
                 for p in parts]
    return Observation(info=info, provenance=provenance, tracks=tracks,
                       synthetic=fuse(merge_signals([p.signals for p in parts], track_ids), synthetic),
                       decode=_decode_totals(parts), dropped_faces=_sum([p.dropped_faces for p in parts]),
                       timings_ms=_sum([p.timings_ms for p in parts]),
                       warnings=[w for p in parts for w in p.warnings], characters=_pooled_characters(parts))


def merge_segments(info: VideoInfo, provenance: Provenance, parts: list[SegmentPart], scanner: Scanner,
                   gallery: GallerySearcher | None, uploader: str | None, declared_ai: bool = False) -> ScanResult:
    """The ScanResult of the whole video from its segments (in any order), decided once."""
    observation = merge_observations(info, provenance, parts, scanner.config.tracking, scanner.synthetic.config)
    return scanner.decide(observation, gallery, uploader, declared_ai)
