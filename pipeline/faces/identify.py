"""Open-set identity decision per track: threshold, margin over the runner-up, frame votes."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipeline.config import MatchConfig
from pipeline.faces.tracking import aggregate_embedding
from pipeline.types import FaceObservation, IdentityInfo, IdentityScore, ReferenceHit, Track, TrackMatch


class GallerySearcher(Protocol):
    """What the pipeline needs from a gallery; the gallery package provides it."""

    version: int

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]: ...

    def identity(self, identity_id: str) -> IdentityInfo: ...


def identity_scores(hits: Sequence[ReferenceHit], gallery: GallerySearcher) -> list[IdentityScore]:
    """Best reference similarity per identity, best identity first.

    Every reference of an identity is searched; the identity's score is its closest reference,
    so a profile reference does not dilute a frontal one. Enrollment keeps references that
    disagree with the rest of their identity out (gallery/enroll.py).
    """
    best: dict[str, float] = {}
    for hit in hits:
        if hit.similarity > best.get(hit.identity_id, -2.0):
            best[hit.identity_id] = hit.similarity
    ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
    return [IdentityScore(gallery.identity(identity_id), sim) for identity_id, sim in ranked]


def decide_tracks(tracks: Sequence[Track], gallery: GallerySearcher | None, config: MatchConfig) -> list[TrackMatch]:
    """One batched gallery search for all tracks and all their usable faces, then a decision each."""
    aggregates = [aggregate_embedding(track) for track in tracks]
    if gallery is None:
        return [_unmatched(track, agg, "gallery is empty") for track, agg in zip(tracks, aggregates)]
    queries: list[np.ndarray] = []
    owners: list[tuple[int, FaceObservation | None]] = []
    for i, (track, agg) in enumerate(zip(tracks, aggregates)):
        if agg is None:
            continue
        queries.append(agg)
        owners.append((i, None))
        for face in track.usable_faces:
            queries.append(face.vector)
            owners.append((i, face))
    results = gallery.search(np.stack(queries), config.top_k) if queries else []
    per_track: dict[int, tuple[list[ReferenceHit], list[list[ReferenceHit]]]] = {}
    for (i, owner), hits in zip(owners, results):
        agg_hits, face_hits = per_track.setdefault(i, ([], []))
        if owner is None:
            agg_hits.extend(hits)
        else:
            face_hits.append(hits)
    decisions = []
    for i, (track, agg) in enumerate(zip(tracks, aggregates)):
        if agg is None:
            decisions.append(_unmatched(track, agg, ""))
            continue
        agg_hits, face_hits = per_track[i]
        weights = [f.quality.weight for f in track.usable_faces]
        decisions.append(_decide(identity_scores(agg_hits, gallery), face_hits, weights, gallery, config))
    return decisions


def candidate_track_ids(tracks: Sequence[Track], gallery: GallerySearcher, config: MatchConfig) -> set[int]:
    """Tracks that could be decided for a registered likeness (a match or a weak candidate), or come
    within `candidate_slack` of the review threshold: the tracks whose face-level evidence a finding
    could use. Nothing else is worth a CLIP call on an upload that shows no registered person."""
    floor = config.review_threshold - config.candidate_slack
    return {track.track_id for track, match in zip(tracks, decide_tracks(tracks, gallery, config))
            if match.status in ("match", "weak") or match.similarity >= floor}


def _unmatched(track: Track, aggregate: np.ndarray | None, why: str) -> TrackMatch:
    if aggregate is None:
        reasons = Counter(f.quality.reason for f in track.faces)
        common = reasons.most_common(1)[0][0]
        return TrackMatch(None, 0.0, 0.0, 0.0, None, "unusable", f"no usable face in track: {common}")
    return TrackMatch(None, 0.0, 0.0, 0.0, None, "no_match", why)


def _decide(aggregate: list[IdentityScore], face_hits: list[list[ReferenceHit]], weights: list[float],
            gallery: GallerySearcher, config: MatchConfig) -> TrackMatch:
    """The track's similarity to an identity is the better of its quality-weighted mean embedding's and
    its second-best face's (one good three-quarter frame among many poor ones is not averaged away,
    and no single frame decides alone). Faces vote, weighted by quality, for the identity they are
    closest to when that is at least the review threshold; faces close to nobody abstain."""
    if not aggregate:
        return TrackMatch(None, 0.0, 0.0, 0.0, None, "no_match", "gallery is empty")
    per_face = [{s.identity.id: s for s in identity_scores(hits, gallery)} for hits in face_hits]
    infos = {s.identity.id: s.identity for s in aggregate}
    infos.update({i: s.identity for scores in per_face for i, s in scores.items()})
    mean_similarity = {s.identity.id: s.similarity for s in aggregate}
    track_score = {}
    for identity_id in infos:
        agg = mean_similarity.get(identity_id, -1.0)
        faces = sorted((scores[identity_id].similarity for scores in per_face if identity_id in scores), reverse=True)
        second = faces[1] if len(faces) >= 2 else -1.0
        track_score[identity_id] = max(agg, second)
    ranked = sorted(track_score.items(), key=lambda kv: kv[1], reverse=True)
    best_id, best_similarity = ranked[0]
    best = infos[best_id]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    margin = best_similarity - max(runner_up, 0.0)
    face_sims, voting, agreeing, votes = [], 0.0, 0.0, 0
    for scores, weight in zip(per_face, weights):
        own = scores.get(best_id)
        face_sims.append(round(own.similarity, 4) if own else 0.0)
        top = max(scores.values(), key=lambda s: s.similarity, default=None)
        if top is None or top.similarity < config.review_threshold:
            continue  # close to nobody: no vote either way
        voting += weight
        if top.identity.id == best_id:
            agreeing += weight
            votes += 1
    vote_fraction = agreeing / voting if voting > 0 else 1.0
    facts = (f"similarity {best_similarity:.2f} to {best.name}, margin {margin:.2f} over the "
             f"runner-up, {votes}/{len(face_hits)} frames agree")
    if best_similarity < config.review_threshold:
        return TrackMatch(None, best_similarity, margin, vote_fraction, best, "no_match",
                          f"no registered likeness is close: {facts}", tuple(face_sims))
    failures = []
    own_threshold = best.match_threshold
    threshold = max(config.threshold, own_threshold) if own_threshold is not None else config.threshold
    if best_similarity < threshold:
        whose = "this likeness's own threshold" if threshold > config.threshold else "the match threshold"
        failures.append(f"similarity below {whose} {threshold:.2f}")
    if margin < config.margin:
        failures.append(f"margin below {config.margin:.2f} (look-alike of another registered likeness)")
    if vote_fraction < config.min_vote_fraction:
        failures.append(f"fewer than {config.min_vote_fraction:.0%} of the voting frames agree")
    if failures:
        return TrackMatch(None, best_similarity, margin, vote_fraction, best, "weak",
                          f"uncertain: {facts}; " + "; ".join(failures), tuple(face_sims))
    return TrackMatch(best, best_similarity, margin, vote_fraction, best, "match",
                      f"matched: {facts}", tuple(face_sims))
