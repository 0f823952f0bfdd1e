"""Character matching during a scan: whole-image CLIP embeddings of sparse frames and their crops.

Face embeddings find a live-action character through the actor's face but fail on animated or
stylised ones. This path embeds a few frames (every `interval_s` plus scene cuts, far sparser than
face sampling, because the CLIP tower costs ~0.7-1.6 s per crop on two CPU cores) as the whole frame
plus a couple of crops around the largest faces or, failing those, the most salient region. After
the scan every crop is searched against the character index in one batch; frames whose best crop
agrees on a character form a character track, decided like a face track: threshold, margin over
the second-best character, agreement across frames. Measurements behind the defaults:
docs/characters.md.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np
from pydantic import BaseModel, Field

from pipeline.config import MatchConfig
from pipeline.faces.identify import GallerySearcher, decide_tracks, identity_scores
from pipeline.policy import Action, AiEvidence, Finding, category_for, decide_finding, match_confidence
from pipeline.types import FaceObservation, Frame, IdentityInfo, ReferenceHit, Track, TrackMatch
from pipeline.video import fit_within

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels
THUMBNAIL_PX = 160
SHOT_STARTS = ("scene_cut", "keyframe")  # Frame.reason values that may open a new shot


class CharacterConfig(BaseModel):
    """Schedule, crops and open-set decision of the character path."""

    interval_s: float = Field(
        2.0, gt=0.0, le=60.0, description="Seconds between frames embedded for characters. Each frame "
        "costs one CLIP call per crop (0.7-1.6 s on this project's 2-core machines), so this sets the "
        "path's cost per minute.")
    scene_cuts: bool = Field(
        True, description="Also embed sampled frames that may open a shot (a scene cut, a keyframe), so a "
        "shot shorter than `interval_s` is not missed and tracks do not bridge shots.")
    min_spacing_s: float = Field(
        0.25, ge=0.0, description="Frames embedded at least this far apart: bounds the cost of rapid cuts. "
        "Larger skips the first frame of shots that start soon after an embedded frame.")
    max_crops: int = Field(
        2, ge=0, le=8, description="Crops per frame besides the whole frame: faces first (largest), then the "
        "most salient region. A crop isolates a character from the scene around it; each costs a CLIP call.")
    face_scale: float = Field(
        1.2, ge=1.0, le=4.0, description="Face crops are squares this many times the face box: a little "
        "hair and outline, but not the scene (measured: wider crops let the scene decide).")
    min_face_px: float = Field(36.0, ge=8.0, description="Smaller faces get no crop of their own.")
    batch_size: int = Field(8, ge=1, le=256, description="Crops per CLIP call; pays off on GPU only.")
    threshold: float = Field(
        0.92, ge=-1.0, le=1.0, description="Median CLIP cosine similarity of a track's frames (best crop "
        "each) to a character's closest reference. Measured (docs/characters.md): the character in another "
        "shot 0.941-0.966, another character of the same film 0.849-0.896, unrelated photos, stills and "
        "videos at most 0.714.")
    review_threshold: float = Field(
        0.90, ge=-1.0, le=1.0, description="Frames below this are no hits at all; tracks between this and "
        "`threshold` are weak candidates (human review at most). Above every other character measured.")
    margin: float = Field(
        0.03, ge=0.0, le=1.0, description="Required lead of the character over the second-best registered "
        "character on the same crop: characters of one film share style and scene (measured leads of the "
        "right one: 0.07-0.13 per frame, 0.04 at the least per crop).")
    min_frames: int = Field(
        2, ge=1, description="Hit frames a track needs to match: one frame alike is a coincidence.")
    min_vote_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the frames embedded within a track's time span that are "
        "hits of its character: agreement across frames, not one lucky frame among misses.")
    max_gap_s: float = Field(
        4.5, gt=0.0, description="A character track ends after this long without a hit (a little more "
        "than two intervals, so one missed frame does not split it).")
    top_k: int = Field(50, ge=1, le=1000, description="Reference hits fetched per crop.")
    face_threshold: float = Field(
        0.60, ge=-1.0, le=1.0, description="Face-path similarity a character needs, on the track and on "
        "`MatchConfig.min_vote_fraction` of its faces. ArcFace was trained on photographs: another drawn "
        "character's faces scored up to 0.55, above the person threshold; the character itself in another "
        "shot 0.57-0.71, median 0.64.")
    reference_interval_s: float = Field(
        0.5, gt=0.0, description="Seconds between the frames taken from a reference clip.")
    max_reference_frames: int = Field(
        8, ge=1, le=64, description="Frames taken from one reference clip at most; each costs ~3 CLIP calls.")


class ImageEmbedder(Protocol):
    def embed(self, images_bgr: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray: ...


class CharacterSearcher(Protocol):
    """What the pipeline needs from the character gallery; gallery/gallery.py's CharacterGallery provides it."""

    version: int

    def __len__(self) -> int:
        """Registered references, after picking up the gallery's latest version."""
        ...

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]: ...

    def identity(self, identity_id: str) -> IdentityInfo: ...

    def cast(self, identity_id: str) -> tuple[IdentityInfo, ...]:
        """A character's actors, or the characters an actor plays."""
        ...


# -- crops ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Crop:
    region: str     # "whole" | "face" | "salient"
    box: Box


def square_box(cx: float, cy: float, side: float, width: int, height: int) -> Box:
    """A square of `side` centred on (cx, cy), shifted (not cut) to stay inside the image: CLIP
    centre-crops to a square anyway, so a non-square crop would lose its edges."""
    side = int(round(min(side, width, height)))
    x0 = int(round(min(max(0.0, cx - side / 2), width - side)))
    y0 = int(round(min(max(0.0, cy - side / 2), height - side)))
    return x0, y0, x0 + side, y0 + side


def face_box(bbox: np.ndarray, scale: float, width: int, height: int) -> Box:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return square_box(cx, cy, max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * scale, width, height)


def salient_box(image: np.ndarray, size: int = 64, min_fraction: float = 0.4) -> Box | None:
    """The most salient region by spectral residual (Hou & Zhang 2007) on a 64x64 grey thumbnail:
    about a millisecond, no model. Artwork and mascots usually sit on plainer ground than the
    character; None when nothing stands out."""
    height, width = image.shape[:2]
    grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (size, size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(grey.astype(np.float32))
    log_amplitude = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), size / 16)
    mask = (saliency >= 3 * saliency.mean()).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count <= 1:
        return None
    mass = np.bincount(labels.ravel(), weights=saliency.ravel(), minlength=count)[1:]
    x, y, w, h = stats[1 + int(np.argmax(mass)), :4]
    sx, sy = width / size, height / size
    side = max(1.3 * max(w * sx, h * sy), min_fraction * min(width, height))
    return square_box((x + w / 2) * sx, (y + h / 2) * sy, side, width, height)


def choose_crops(image: np.ndarray, face_boxes: Sequence[np.ndarray], config: CharacterConfig) -> list[Crop]:
    """Whole image, then up to `max_crops` of: the largest faces, the most salient region."""
    height, width = image.shape[:2]
    crops = [Crop("whole", (0, 0, width, height))]
    large = [b for b in face_boxes if min(b[2] - b[0], b[3] - b[1]) >= config.min_face_px]
    for bbox in sorted(large, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:config.max_crops]:
        crops.append(Crop("face", face_box(bbox, config.face_scale, width, height)))
    if len(crops) <= config.max_crops:
        salient = salient_box(image)
        if salient is not None:
            crops.append(Crop("salient", salient))
    return crops


def cut(image: np.ndarray, box: Box) -> np.ndarray:
    return np.ascontiguousarray(image[box[1]:box[3], box[0]:box[2]])


# -- collecting during a scan --------------------------------------------------------------------

@dataclass(frozen=True)
class CharacterSample:
    """One embedded crop of one frame."""

    t_s: float
    region: str
    box: Box
    embedding: np.ndarray
    thumbnail: np.ndarray | None  # the crop, at most THUMBNAIL_PX on its long side, kept when it is a hit
    shot_start: bool              # the frame may open a new shot (a scene cut or a keyframe)


class CharacterCollector:
    """Chooses the frames and crops of one scan and embeds them in batches as they come. Thumbnails
    are kept only of crops that reach the review threshold: evidence, without holding every crop of
    a long video."""

    def __init__(self, embedder: ImageEmbedder, index: CharacterSearcher, config: CharacterConfig):
        self._embedder = embedder
        self._index = index
        self._config = config
        self._next_due = -np.inf
        self._last = -np.inf
        self._pending: list[tuple[float, bool, Crop, np.ndarray]] = []
        self.samples: list[CharacterSample] = []
        self.frames_embedded = 0

    def offer(self, frame: Frame, faces: list[FaceObservation]) -> None:
        config = self._config
        due = frame.t_s >= self._next_due - 1e-6 or (config.scene_cuts and frame.reason in SHOT_STARTS)
        if not due or frame.t_s - self._last < config.min_spacing_s - 1e-6:
            return
        self._last = frame.t_s
        self._next_due = frame.t_s + config.interval_s
        self.frames_embedded += 1
        for crop in choose_crops(frame.image, [f.bbox for f in faces], config):
            self._pending.append((frame.t_s, frame.reason in SHOT_STARTS, crop, cut(frame.image, crop.box)))
        if len(self._pending) >= config.batch_size:
            self._flush()

    def finish(self) -> list[CharacterSample]:
        self._flush()
        return self.samples

    def _flush(self) -> None:
        if not self._pending:
            return
        embeddings = self._embedder.embed([image for *_, image in self._pending], self._config.batch_size)
        nearest = self._index.search(embeddings, 1)
        for (t_s, shot_start, crop, image), embedding, hits in zip(self._pending, embeddings, nearest):
            hit = bool(hits) and hits[0].similarity >= self._config.review_threshold
            self.samples.append(CharacterSample(t_s, crop.region, crop.box, embedding,
                                                fit_within(image, THUMBNAIL_PX) if hit else None, shot_start))
        self._pending = []


# -- deciding ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CharacterHit:
    """The best crop of one frame for one character."""

    t_s: float
    region: str
    box: Box
    similarity: float
    margin: float           # over the second-best character on the same crop


@dataclass
class CharacterTrack(Track):
    """Frames in which one character was found by the image path. A Track so that findings, reports
    and thumbnails treat it like a face track; it has hits instead of faces."""

    hits: list[CharacterHit] = field(default_factory=list)
    candidate_id: str = ""

    @property
    def start_s(self) -> float:
        return self.hits[0].t_s

    @property
    def end_s(self) -> float:
        return self.hits[-1].t_s


@dataclass(frozen=True)
class CharacterResult:
    """What the character path found in one scan. The samples stay, so segments scanned apart can
    be decided together (`CharacterMatcher.decide` over all their samples)."""

    samples: list[CharacterSample]
    tracks: list[CharacterTrack]
    matches: list[TrackMatch]
    frames_embedded: int
    cast: dict[str, tuple[str, ...]] = field(default_factory=dict)  # character id -> actors' names

    @property
    def crops_embedded(self) -> int:
        return len(self.samples)


def decide_characters(samples: Sequence[CharacterSample], index: CharacterSearcher, config: CharacterConfig,
                      first_track_id: int = 1) -> tuple[list[CharacterTrack], list[TrackMatch]]:
    """One batched search for every crop; per frame and character the best crop that ranks the
    character first is a hit; hits become tracks; each track gets an open-set decision."""
    if not samples or len(index) == 0:
        return [], []
    results = index.search(np.stack([s.embedding for s in samples]), config.top_k)
    hits: dict[float, dict[str, CharacterHit]] = {s.t_s: {} for s in samples}
    for sample, found in zip(samples, results):
        ranked = identity_scores(found, index)
        if not ranked or ranked[0].similarity < config.review_threshold:
            continue
        top = ranked[0]
        margin = top.similarity - max(ranked[1].similarity if len(ranked) > 1 else 0.0, 0.0)
        known = hits[sample.t_s].get(top.identity.id)
        if known is None or top.similarity > known.similarity:
            hits[sample.t_s][top.identity.id] = CharacterHit(sample.t_s, sample.region, sample.box,
                                                             top.similarity, margin)
    tracks = _link(hits, {s.t_s for s in samples if s.shot_start}, config)
    times = sorted(hits)
    decisions = [_decide(track, times, index, config) for track in tracks]
    for number, track in enumerate(tracks, start=first_track_id):
        track.track_id = number
        best = max(track.hits, key=lambda h: h.similarity)
        track.thumbnail = next(s.thumbnail for s in samples if s.t_s == best.t_s and s.box == best.box)
    return tracks, decisions


def _link(hits: dict[float, dict[str, CharacterHit]], cuts: set[float],
          config: CharacterConfig) -> list[CharacterTrack]:
    """Per character, hits no more than `max_gap_s` apart form one track; an embedded first frame
    of a shot without the character ends its track: sparse frames must not bridge a shot."""
    open_tracks: dict[str, CharacterTrack] = {}
    tracks: list[CharacterTrack] = []
    for t_s in sorted(hits):
        if t_s in cuts:
            open_tracks = {c: track for c, track in open_tracks.items() if c in hits[t_s]}
        for character, hit in hits[t_s].items():
            track = open_tracks.get(character)
            if track is None or t_s - track.end_s > config.max_gap_s:
                track = open_tracks[character] = CharacterTrack(track_id=0, candidate_id=character)
                tracks.append(track)
            track.hits.append(hit)
    return sorted(tracks, key=lambda tr: (tr.start_s, tr.candidate_id))


def _decide(track: CharacterTrack, times: list[float], index: CharacterSearcher,
            config: CharacterConfig) -> TrackMatch:
    identity = index.identity(track.candidate_id)
    sims = [h.similarity for h in track.hits]
    similarity = float(np.median(sims))
    margin = float(np.median([h.margin for h in track.hits]))
    embedded = sum(1 for t in times if track.start_s - 1e-6 <= t <= track.end_s + 1e-6)
    vote_fraction = len(sims) / max(embedded, 1)
    facts = (f"image similarity {similarity:.2f} to {identity.name} (median of {len(sims)} frames), margin "
             f"{margin:.2f} over the next character, {len(sims)}/{embedded} embedded frames agree")
    failures = []
    if similarity < config.threshold:
        failures.append(f"similarity below the character threshold {config.threshold:.2f}")
    if margin < config.margin:
        failures.append(f"margin below {config.margin:.2f} (alike another registered character)")
    if len(sims) < config.min_frames:
        failures.append(f"fewer than {config.min_frames} frames")
    if vote_fraction < config.min_vote_fraction:
        failures.append(f"fewer than {config.min_vote_fraction:.0%} of frames agree")
    per_frame = tuple(round(s, 4) for s in sims)
    if failures:
        return TrackMatch(None, similarity, margin, vote_fraction, identity, "weak",
                          f"uncertain: {facts}; " + "; ".join(failures), per_frame)
    return TrackMatch(identity, similarity, margin, vote_fraction, identity, "match", f"matched: {facts}", per_frame)


# -- the face path's decisions about characters --------------------------------------------------

class _Hiding:
    """The face gallery as seen without some identities: a margin over a character's own actor is
    no look-alike conflict, they share a face by declaration."""

    def __init__(self, gallery: GallerySearcher, hidden: set[str]):
        self._gallery = gallery
        self._hidden = hidden
        self.version = gallery.version

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]:
        return [[h for h in hits if h.identity_id not in self._hidden] for hits in self._gallery.search(embeddings, k)]

    def identity(self, identity_id: str) -> IdentityInfo:
        return self._gallery.identity(identity_id)


def review_face_matches(tracks: Sequence[Track], matches: list[TrackMatch], gallery: GallerySearcher,
                        index: CharacterSearcher, match: MatchConfig, config: CharacterConfig) -> list[TrackMatch]:
    """Face-path decisions that involve characters, revised.

    A face that matches both a character and the actor linked to it is the character (played by the
    actor): it is decided again with the actors hidden, so the margin is over everyone else. A
    character matched by its face alone needs `face_threshold`: ArcFace was trained on photographs
    and scores different drawn faces alike.
    """
    revised = []
    for track, decision in zip(tracks, matches):
        candidate = decision.candidate
        if decision.status == "weak" and candidate is not None:
            group = {candidate, *index.cast(candidate.id)}
            actors = {i.id for i in group if i.kind != "character"}
            if actors and len(group) > len(actors):
                retry = decide_tracks([track], _Hiding(gallery, actors), match)[0]
                if retry.status == "match" and retry.identity is not None and retry.identity.kind == "character":
                    decision = replace(retry, reason=retry.reason + "; the actors who play it are not counted "
                                                   "as look-alikes")
        if decision.status == "match" and decision.identity is not None and decision.identity.kind == "character":
            decision = _character_face_check(decision, match, config)
        revised.append(decision)
    return revised


def _character_face_check(decision: TrackMatch, match: MatchConfig, config: CharacterConfig) -> TrackMatch:
    assert decision.identity is not None, "only matched decisions are checked"
    faces = decision.face_similarities
    agree = sum(1 for s in faces if s >= config.face_threshold) / max(len(faces), 1)
    if decision.similarity >= config.face_threshold and agree >= match.min_vote_fraction:
        return decision
    return replace(decision, identity=None, status="weak", reason=(
        f"uncertain: face similarity {decision.similarity:.2f} to the character {decision.identity.name}, "
        f"{agree:.0%} of faces at {config.face_threshold:.2f}; a character found by its face needs "
        f"{config.face_threshold:.2f} on the track and on {match.min_vote_fraction:.0%} of its faces"))


# -- findings ------------------------------------------------------------------------------------

def character_findings(findings: list[Finding], result: CharacterResult, ai: AiEvidence, uploader: str | None,
                       config: CharacterConfig) -> list[Finding]:
    """The face path's findings plus the image path's; a character found both ways is one finding,
    and every character finding names the actors who play it."""
    by_identity = {f.identity.id: f for f in findings}
    grouped: dict[str, list[tuple[CharacterTrack, TrackMatch]]] = defaultdict(list)
    for track, decision in zip(result.tracks, result.matches):
        if decision.status in ("match", "weak") and decision.candidate is not None:
            grouped[decision.candidate.id].append((track, decision))
    merged = list(findings)
    for character_id, pairs in grouped.items():
        accepted = [(t, m) for t, m in pairs if m.status == "match"]
        chosen = accepted or pairs
        best = max(chosen, key=lambda tm: tm[1].similarity)[1]
        existing = by_identity.get(character_id)
        if existing is not None:
            existing.tracks.extend(t for t, _ in chosen)
            existing.matches.extend(m for _, m in chosen)
            continue
        candidate = best.candidate
        assert candidate is not None, "grouped by candidate above"
        action, reasons = decide_finding(candidate, best, ai, uploader)
        if not accepted and action is Action.ALLOW:
            continue  # an uncertain resemblance that changes nothing is not a finding
        confidence = match_confidence(best.similarity, config.threshold, config.review_threshold)
        merged.append(Finding(identity=candidate, category=category_for(candidate, ai),
                              confidence=round(confidence, 3), tracks=[t for t, _ in chosen],
                              matches=[m for _, m in chosen], match=best, action=action, reasons=reasons))
    for finding in merged:
        if finding.identity.kind == "character":
            paths = sorted({"image" if isinstance(t, CharacterTrack) else "face" for t in finding.tracks})
            found_by = f"{played_by_words(finding.identity, result.cast)}, found by its {' and '.join(paths)}"
            finding.reasons = [found_by] + finding.reasons
    return sorted(merged, key=lambda f: min(t.start_s for t in f.tracks))


def played_by_words(identity: IdentityInfo, cast: dict[str, tuple[str, ...]]) -> str:
    actors = cast.get(identity.id)
    return f"character {identity.name} (played by {', '.join(actors)})" if actors else f"character {identity.name}"


# -- the Scanner's collaborator ------------------------------------------------------------------

class CharacterMatcher:
    """Holds the CLIP embedder and the character index (one per process); one collector per scan.

    `embedder` is a factory called on the first scan that needs it: the tower takes seconds and
    ~350 MB to load, which a gallery without characters should never pay.
    """

    def __init__(self, embedder: Callable[[], ImageEmbedder], index: CharacterSearcher,
                 config: CharacterConfig | None = None):
        self._make_embedder = embedder
        self._embedder: ImageEmbedder | None = None
        self.index = index
        self.config = config or CharacterConfig()

    def start(self) -> CharacterCollector | None:
        """A collector for one scan; None when no character is registered, so the path costs nothing."""
        if not len(self.index):
            return None
        if self._embedder is None:
            self._embedder = self._make_embedder()
        return CharacterCollector(self._embedder, self.index, self.config)

    def decide(self, samples: list[CharacterSample], frames_embedded: int, first_track_id: int) -> CharacterResult:
        """Tracks and decisions from samples, against the character index as it is now."""
        tracks, matches = decide_characters(samples, self.index, self.config, first_track_id)
        return CharacterResult(samples, tracks, matches, frames_embedded)

    def review(self, tracks: Sequence[Track], matches: list[TrackMatch], gallery: GallerySearcher | None,
               match: MatchConfig) -> list[TrackMatch]:
        if gallery is None:
            return matches
        return review_face_matches(tracks, matches, gallery, self.index, match, self.config)

    def findings(self, findings: list[Finding], result: CharacterResult, ai: AiEvidence,
                 uploader: str | None) -> tuple[list[Finding], CharacterResult]:
        characters = {f.identity.id for f in findings if f.identity.kind == "character"}
        characters |= {m.candidate.id for m in result.matches if m.candidate is not None}
        cast = {c: tuple(a.name for a in self.index.cast(c) if a.kind != "character") for c in characters}
        result = replace(result, cast={c: names for c, names in cast.items() if names})
        return character_findings(findings, result, ai, uploader, self.config), result
