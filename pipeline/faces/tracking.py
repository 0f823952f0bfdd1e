"""Link faces across sampled frames into tracks, so one person on screen is one decision."""
from __future__ import annotations

import numpy as np

from pipeline.config import TrackingConfig
from pipeline.types import FaceObservation, Track

_RECENT = 5  # faces per track that represent its current appearance


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracker:
    """Greedy association of each frame's faces to open tracks.

    A link needs either box overlap with moderate embedding agreement, or strong embedding
    agreement alone (sparse sampling and fast motion break overlap). A track closes after
    `max_gap_s` without a link; a scene cut does not close tracks, since the same person often
    reappears in the next shot, but across a cut only the embedding test decides (`relink_similarity`):
    a box at the same place in another shot says nothing, and two drawn characters at the same place
    agree by 0.45 (Megamind.avi).
    """

    def __init__(self, config: TrackingConfig):
        self._config = config
        self._open: list[Track] = []
        self._closed: list[Track] = []
        self._next_id = 1

    def needs_embedding(self, bbox: np.ndarray, t_s: float, cut: bool = False) -> bool:
        """False when the face continues an established track by overlap and that track was
        embedded recently: its identity evidence is already there, the embedding would cost
        the most of any stage and add little. Always True after a cut (`cut`): there only the
        embedding can link."""
        config = self._config
        if config.reembed_every_s <= 0 or cut:
            return True
        for track in self._open:
            embedded = track.usable_faces
            if len(embedded) >= config.min_embedded_faces and t_s - embedded[-1].t_s < config.reembed_every_s \
                    and iou(track.faces[-1].bbox, bbox) >= config.reuse_iou:
                return False
        return True

    def update(self, faces: list[FaceObservation], t_s: float, cut: bool = False) -> None:
        """Link `faces`, seen at `t_s`, to open tracks or open new ones; `cut`: their frame opens a
        shot, so only embedding agreement of `relink_similarity` links."""
        self._close_stale(t_s)
        candidates = []
        for ti, track in enumerate(self._open):
            appearance = _appearance(track)
            last = track.faces[-1]
            for fi, face in enumerate(faces):
                overlap = 0.0 if cut else iou(last.bbox, face.bbox)
                if face.embedding is None or appearance is None:
                    if overlap >= self._config.reuse_iou:
                        candidates.append((1.0 + overlap, ti, fi))
                    continue
                sim = float(appearance @ face.embedding)
                if (overlap >= self._config.min_iou and sim >= self._config.link_similarity) or \
                        sim >= self._config.relink_similarity:
                    candidates.append((sim + overlap, ti, fi))
        used_tracks, used_faces = set(), set()
        for _, ti, fi in sorted(candidates, reverse=True):
            if ti in used_tracks or fi in used_faces:
                continue
            _append(self._open[ti], faces[fi])
            used_tracks.add(ti)
            used_faces.add(fi)
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                track = Track(track_id=self._next_id)
                _append(track, face)
                self._open.append(track)
                self._next_id += 1

    def _close_stale(self, t_s: float) -> None:
        still: list[Track] = []
        for track in self._open:
            (still if t_s - track.end_s <= self._config.max_gap_s else self._closed).append(track)
        self._open = still

    def finish(self) -> list[Track]:
        tracks = sorted(self._closed + self._open, key=lambda tr: (tr.start_s, tr.track_id))
        self._open, self._closed = [], []
        return tracks


def same_faces(before: list[FaceObservation], after: list[FaceObservation], min_iou: float,
               min_similarity: float, relink_similarity: float | None = None) -> bool:
    """True when two sampled frames hold the same faces: as many faces, each face of `after` paired with
    its own face of `before`, either at the same place (greedy, best overlap first: boxes overlapping by
    at least `min_iou` and, when both were embedded, embeddings agreeing by at least `min_similarity`)
    or, with `relink_similarity`, anywhere by embeddings agreeing that much (a pan or zoom moves every
    face, not who is on screen; the tracker links such faces the same way). Between two such frames no
    track starts or ends, so the frames in between add no appearance."""
    if len(before) != len(after):
        return False
    pairs = sorted(((iou(a.bbox, b.bbox), i, j) for i, a in enumerate(before) for j, b in enumerate(after)),
                   reverse=True)
    used_before: set[int] = set()
    used_after: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i in used_before or j in used_after:
            continue
        a, b = before[i].embedding, after[j].embedding
        if a is not None and b is not None and float(a @ b) < min_similarity:
            continue
        used_before.add(i)
        used_after.add(j)
    if relink_similarity is not None and len(used_after) < len(after):
        alike = sorted(((float(a.vector @ b.vector), i, j) for i, a in enumerate(before) if i not in used_before
                        and a.embedding is not None for j, b in enumerate(after)
                        if j not in used_after and b.embedding is not None), reverse=True)
        for similarity, i, j in alike:
            if similarity < relink_similarity:
                break
            if i in used_before or j in used_after:
                continue
            used_before.add(i)
            used_after.add(j)
    return len(used_after) == len(after)


def _append(track: Track, face: FaceObservation) -> None:
    """Add a face; keep only the best crop per track so memory does not grow with video length."""
    track.faces.append(face)
    if face.crop is not None and face.evidence_score > track.thumbnail_score:
        track.thumbnail, track.thumbnail_score = face.crop, face.evidence_score
    face.crop = None


def _appearance(track: Track) -> np.ndarray | None:
    """Mean of the track's most recent embeddings, preferring usable faces."""
    embedded = track.embedded_faces
    if not embedded:
        return None
    recent = [f for f in embedded[-_RECENT * 2:] if f.quality.usable][-_RECENT:] or embedded[-_RECENT:]
    mean = np.mean([f.vector for f in recent], axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def aggregate_embedding(track: Track, outlier_similarity: float = 0.2) -> np.ndarray | None:
    """Quality-weighted mean of the usable faces, after dropping faces that disagree with it.

    Weights grow with face size and detector score and shrink with pose and blur (FaceQuality.weight).
    Outliers (a mis-linked face, a badly blurred frame) are faces whose similarity to the first mean
    falls below both `outlier_similarity` and the median minus 2 MAD.
    """
    usable = track.usable_faces
    if not usable:
        return None
    embeddings = np.stack([f.vector for f in usable])
    weights = np.array([min(f.quality.size_px, 160.0) * f.quality.det_score * f.quality.weight for f in usable])
    mean = _normalise(weights @ embeddings)
    sims = embeddings @ mean
    if len(usable) >= 3:
        median = float(np.median(sims))
        mad = float(np.median(np.abs(sims - median)))
        keep = ~((sims < median - 2 * mad - 1e-6) & (sims < outlier_similarity))
        if keep.any():
            mean = _normalise(weights[keep] @ embeddings[keep])
    return mean


def _normalise(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
