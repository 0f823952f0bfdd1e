"""Short-video filters on real faces, made with OpenCV: what selfie and short-video apps do to a face
before upload, for measuring and fitting the face-swap probe (benchmarks/face_swap_filters.py,
tools/fit_face_swap_probe.py) and for tests.

Every filter takes a BGR frame and the face's 5 landmarks (SCRFD's: eyes, nose tip, mouth corners)
and returns the filtered frame; geometry is placed in ArcFace template coordinates (the 112x112
aligned crop) and scaled by the face's eye distance, so a filter looks the same on any face size.

- skin smoothing (``smooth_skin``): a bilateral or guided filter blended in over a skin mask (the
  face oval, pixels whose chroma is close to the cheeks', eyes, brows and mouth left sharp),
  feathered, some fine texture kept, as beauty apps do;
- face slimming and eye enlarging (``slim_face``, ``enlarge_eyes``): local ``cv2.remap`` warps
  around jaw and eyes;
- ``whiten``: lighter, less saturated skin and a brighter frame; ``grade``: tone curves (LUTs);
- ``sharpen``: unsharp mask; ``sticker``: an emoji by the head, blush hearts, dog ears and nose;
- ``beauty_medium`` and ``heavy_beauty``: the combinations beauty presets apply.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipeline.faces.align import alignment_matrix

__all__ = ["FILTERS", "FIT_FILTERS", "beauty_medium", "enlarge_eyes", "eye_distance", "grade", "heavy_beauty",
           "random_filter", "sharpen", "skin_mask", "slim_face", "smooth_skin", "sticker", "whiten"]


def to_image(landmarks: np.ndarray) -> np.ndarray:
    """2x3 matrix from ArcFace template coordinates (112x112 crop) to image pixels."""
    return cv2.invertAffineTransform(alignment_matrix(landmarks))


def template_points(landmarks: np.ndarray, points) -> np.ndarray:
    m = to_image(landmarks)
    return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[0] - landmarks[1]))


def face_box(landmarks: np.ndarray, shape: tuple[int, ...], margin: float = 1.7) -> tuple[int, int, int, int]:
    """Region around the face that filters touch: x0, y0, x1, y1 clipped to the frame."""
    centre = template_points(landmarks, [[56.0, 60.0]])[0]
    half = eye_distance(landmarks) * margin * 1.6
    h, w = shape[:2]
    return (max(0, int(centre[0] - half)), max(0, int(centre[1] - half * 1.15)),
            min(w, int(centre[0] + half)), min(h, int(centre[1] + half * 1.1)))


def _ellipse(landmarks: np.ndarray, centre, axes, shape, box) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    pts = np.array(centre) + np.stack([np.cos(angles) * axes[0], np.sin(angles) * axes[1]], axis=1)
    pts = template_points(landmarks, pts) - (box[0], box[1])
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    return mask


def skin_mask(roi: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Float 0..1 mask of facial skin in `roi` (the frame cut to `box`): the face oval (forehead to
    jaw) of pixels whose chroma is close to the cheeks' own, without eyes, brows and mouth;
    feathered, as beauty filters mask skin."""
    shape = roi.shape[:2]
    oval = _ellipse(landmarks, (56, 64), (40, 56), shape, box)
    ycc = cv2.cvtColor(roi, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    cheeks = (_ellipse(landmarks, (34, 78), (9, 8), shape, box) | _ellipse(landmarks, (78, 78), (9, 8), shape, box)
              | _ellipse(landmarks, (56, 30), (14, 5), shape, box)) > 0
    sample = ycc[cheeks] if cheeks.sum() > 20 else ycc[oval > 0]
    centre, spread = np.median(sample, axis=0), np.maximum(sample.std(axis=0), 4.0)
    chroma = np.abs(ycc[..., 1:] - centre[1:]) / np.maximum(2.5 * spread[1:], 10.0)
    skin = (chroma.max(axis=-1) <= 1.0) & (ycc[..., 0] > 0.4 * centre[0])
    eyes = (_ellipse(landmarks, (38.3, 51.7), (11, 7), shape, box)
            | _ellipse(landmarks, (73.5, 51.5), (11, 7), shape, box))
    brows = _ellipse(landmarks, (38, 40), (13, 4), shape, box) | _ellipse(landmarks, (74, 40), (13, 4), shape, box)
    keep_out = eyes | brows | _ellipse(landmarks, (56.1, 92.3), (20, 9), shape, box)
    mask = ((oval > 0) & skin & (keep_out == 0)).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    feather = max(1.0, eye_distance(landmarks) * 0.08)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), feather)


def _in_roi(frame: np.ndarray, landmarks: np.ndarray, change: Callable[[np.ndarray, np.ndarray, tuple], np.ndarray],
            margin: float = 1.7) -> np.ndarray:
    box = face_box(landmarks, frame.shape, margin)
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        return frame
    out = frame.copy()
    roi = np.ascontiguousarray(frame[box[1]:box[3], box[0]:box[2]])
    out[box[1]:box[3], box[0]:box[2]] = change(roi, landmarks, box)
    return out


def _blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.clip(b.astype(np.float32) * m + a.astype(np.float32) * (1 - m), 0, 255).astype(np.uint8)


def smooth_skin(frame: np.ndarray, landmarks: np.ndarray, strength: float, method: str = "bilateral") -> np.ndarray:
    """Beauty-app skin smoothing: an edge-preserving blur blended in over the skin mask.
    strength 0..1 sets the blur's reach and how much of it replaces the skin. As phone apps do, the
    blur runs on the face shrunk to about 50 px between the eyes and is scaled back up."""
    def change(roi, lm, box):
        shrink = min(1.0, 50.0 / eye_distance(lm))
        small = cv2.resize(roi, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA) if shrink < 1 else roi
        ed = eye_distance(lm) * shrink
        if method == "guided":
            smoothed = guided_filter(small, radius=max(2, int(ed * (0.05 + 0.08 * strength))),
                                     eps=(0.02 + 0.06 * strength) ** 2)
        else:
            sigma_space = max(1.5, ed * (0.03 + 0.07 * strength))
            d = min(2 * int(2 * sigma_space) + 1, 15)
            smoothed = cv2.bilateralFilter(small, d=d, sigmaColor=15 + 50 * strength, sigmaSpace=sigma_space)
            if strength > 0.7:  # strong presets run it twice
                smoothed = cv2.bilateralFilter(smoothed, d=d, sigmaColor=15 + 50 * strength, sigmaSpace=sigma_space)
        if shrink < 1:
            smoothed = cv2.resize(smoothed, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_LINEAR)
        detail = roi.astype(np.float32) - cv2.GaussianBlur(roi, (0, 0), 1.0).astype(np.float32)
        smoothed = np.clip(smoothed + (1 - strength) * 0.5 * detail, 0, 255).astype(np.uint8)  # texture kept
        return _blend(roi, smoothed, skin_mask(roi, lm, box) * min(1.0, 0.45 + 0.6 * strength))
    return _in_roi(frame, landmarks, change, margin=1.3)


def guided_filter(image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter, each channel guiding itself (edge-preserving smoothing)."""
    x = image.astype(np.float32) / 255.0
    size = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.boxFilter(x, -1, size)
    var = cv2.boxFilter(x * x, -1, size) - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    out = cv2.boxFilter(a, -1, size) * x + cv2.boxFilter(b, -1, size)
    return np.clip(out * 255.0, 0, 255).astype(np.uint8)


def _local_warp(roi: np.ndarray, controls: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """Liquify-style local translations: content at each control point c moves to m, the move
    fading as (1 - d^2/r^2)^2 to nothing at radius r; applied with cv2.remap."""
    h, w = roi.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = gx.copy(), gy.copy()
    for c, m, r in controls:
        weight = np.clip(1.0 - ((gx - m[0]) ** 2 + (gy - m[1]) ** 2) / (r * r), 0.0, 1.0) ** 2
        map_x -= (weight * (m[0] - c[0])).astype(np.float32)
        map_y -= (weight * (m[1] - c[1])).astype(np.float32)
    return cv2.remap(roi, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def slim_face(frame: np.ndarray, landmarks: np.ndarray, strength: float) -> np.ndarray:
    """Face slimming ("V-face"): cheeks and jaw pulled toward the face's middle (strength 1: by 17 % of
    the eye distance each side), chin a bit up."""
    def change(roi, lm, box):
        offset = np.array([box[0], box[1]], np.float64)
        pairs = [((16, 82), (16 + 6 * strength, 82)), ((96, 82), (96 - 6 * strength, 82)),
                 ((26, 106), (26 + 5 * strength, 105)), ((86, 106), (86 - 5 * strength, 105)),
                 ((56, 122), (56, 122 - 3 * strength))]
        scale = eye_distance(lm) / 35.2  # template eye distance
        controls = [(template_points(lm, [c])[0] - offset, template_points(lm, [m])[0] - offset, 30 * scale)
                    for c, m in pairs]
        return _local_warp(roi, controls)
    return _in_roi(frame, landmarks, change, margin=2.0)


def enlarge_eyes(frame: np.ndarray, landmarks: np.ndarray, strength: float) -> np.ndarray:
    """Big eyes: each eye magnified within a radius of 0.4 eye distances (remap)."""
    def change(roi, lm, box):
        h, w = roi.shape[:2]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = gx.copy(), gy.copy()
        radius = 0.4 * eye_distance(lm)
        for eye in lm[:2] - (box[0], box[1]):
            dx, dy = gx - eye[0], gy - eye[1]
            d2 = (dx * dx + dy * dy) / (radius * radius)
            factor = np.where(d2 < 1.0, 1.0 - strength * (1.0 - d2), 1.0)
            inside = d2 < 1.0
            map_x[inside] = (eye[0] + dx * factor)[inside]
            map_y[inside] = (eye[1] + dy * factor)[inside]
        return cv2.remap(roi, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return _in_roi(frame, landmarks, change)


def whiten(frame: np.ndarray, landmarks: np.ndarray, strength: float) -> np.ndarray:
    """Skin whitening and brightening: lighter, less saturated skin (Lab), and a brighter frame."""
    def change(roi, lm, box):
        lab = cv2.cvtColor(roi, cv2.COLOR_BGR2LAB).astype(np.float32)
        lab[..., 0] += (255 - lab[..., 0]) * 0.3 * strength
        lab[..., 1:] = 128 + (lab[..., 1:] - 128) * (1 - 0.35 * strength)
        light = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
        return _blend(roi, light, skin_mask(roi, lm, box))
    gamma = 1.0 / (1.0 + 0.3 * strength)
    curve = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(_in_roi(frame, landmarks, change), curve)


def grade(frame: np.ndarray, look: str) -> np.ndarray:
    """Colour grading with per-channel tone curves (a LUT), as app filters do."""
    x = np.arange(256, dtype=np.float64)
    curves = {  # (B, G, R) control points in -> out
        "warm": ([(0, 0), (128, 112), (255, 235)], [(0, 0), (128, 130), (255, 250)],
                 [(0, 10), (128, 145), (255, 255)]),
        "teal_orange": ([(0, 30), (128, 120), (255, 225)], [(0, 15), (128, 128), (255, 245)],
                        [(0, 0), (128, 140), (255, 255)]),
        "fade": ([(0, 40), (128, 132), (255, 235)], [(0, 38), (128, 130), (255, 238)],
                 [(0, 35), (128, 134), (255, 240)]),
    }[look]
    lut = np.stack([np.interp(x, *zip(*points)) for points in curves], axis=1).astype(np.uint8)
    graded = cv2.merge([cv2.LUT(frame[..., i], lut[:, i]) for i in range(3)])
    hsv = cv2.cvtColor(graded, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * (1.2 if look != "fade" else 0.8), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def sharpen(frame: np.ndarray, amount: float, sigma: float = 1.5) -> np.ndarray:
    """Unsharp mask over the whole frame."""
    return cv2.addWeighted(frame, 1 + amount, cv2.GaussianBlur(frame, (0, 0), sigma), -amount, 0)


def sticker(frame: np.ndarray, landmarks: np.ndarray, kind: str) -> np.ndarray:
    """An AR sticker that follows the face: an emoji by the head, blush hearts on the cheeks, or dog
    ears and nose. Drawn anti-aliased with a white outline, as sticker packs are."""
    ed = eye_distance(landmarks)
    overlay, alpha = frame.copy(), np.zeros(frame.shape[:2], np.float32)

    def circle(centre, radius, colour, opacity=1.0):
        c = tuple(int(v) for v in np.round(centre))
        cv2.circle(overlay, c, int(radius + max(2, radius * 0.08)), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(overlay, c, int(radius), colour, -1, cv2.LINE_AA)
        cv2.circle(alpha, c, int(radius + max(2, radius * 0.08)), opacity, -1, cv2.LINE_AA)

    if kind == "emoji":
        centre = template_points(landmarks, [[122.0, 10.0]])[0]
        r = 0.55 * ed
        circle(centre, r, (0, 210, 255))
        for side in (-1, 1):
            cv2.circle(overlay, _pt(centre + (side * 0.35 * r, -0.2 * r)), int(0.12 * r), (40, 40, 40), -1,
                       cv2.LINE_AA)
        cv2.ellipse(overlay, _pt(centre + (0, 0.15 * r)), (int(0.5 * r), int(0.4 * r)), 0, 20, 160,
                    (40, 40, 40), max(2, int(0.08 * r)), cv2.LINE_AA)
    elif kind == "cheeks":
        for point in template_points(landmarks, [[30.0, 80.0], [82.0, 80.0]]):
            r = 0.14 * ed
            for dx in (-0.5, 0.5):  # a heart: two lobes and a point
                cv2.circle(overlay, _pt(point + (dx * r, 0)), int(0.6 * r), (150, 80, 255), -1, cv2.LINE_AA)
                cv2.circle(alpha, _pt(point + (dx * r, 0)), int(0.6 * r), 0.8, -1, cv2.LINE_AA)
            tip = np.array([point + (-1.05 * r, 0.15 * r), point + (1.05 * r, 0.15 * r), point + (0, 1.2 * r)],
                           np.int32)
            cv2.fillConvexPoly(overlay, tip, (150, 80, 255), cv2.LINE_AA)
            cv2.fillConvexPoly(alpha, tip, 0.8, cv2.LINE_AA)
    elif kind == "dog":
        for base in ([[14.0, -2.0], [40.0, -18.0], [4.0, 30.0]], [[98.0, -2.0], [72.0, -18.0], [108.0, 30.0]]):
            ear = np.round(template_points(landmarks, base)).astype(np.int32)
            cv2.fillConvexPoly(overlay, ear, (40, 70, 120), cv2.LINE_AA)
            cv2.fillConvexPoly(alpha, ear, 1.0, cv2.LINE_AA)
        nose = template_points(landmarks, [[56.0, 74.0]])[0]
        axes = (int(0.22 * ed), int(0.15 * ed))
        cv2.ellipse(overlay, _pt(nose), axes, 0, 0, 360, (30, 30, 30), -1, cv2.LINE_AA)
        cv2.ellipse(alpha, _pt(nose), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    else:
        raise ValueError(kind)
    return _blend(frame, overlay, np.clip(alpha, 0, 1))


def _pt(point: np.ndarray) -> tuple[int, int]:
    """A point as OpenCV's drawing functions take it (truncated to whole pixels)."""
    return int(point[0]), int(point[1])


def heavy_beauty(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """What a selfie app's strongest beauty preset does: strong skin smoothing, whitening and
    brightening, a slimmer face, bigger eyes, a warm grade and a little sharpening."""
    out = smooth_skin(frame, landmarks, 1.0)
    out = whiten(out, landmarks, 0.8)
    out = slim_face(out, landmarks, 0.9)
    out = enlarge_eyes(out, landmarks, 0.15)
    return sharpen(grade(out, "warm"), 0.4)


def beauty_medium(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    out = smooth_skin(frame, landmarks, 0.6)
    out = whiten(out, landmarks, 0.4)
    out = slim_face(out, landmarks, 0.5)
    return enlarge_eyes(out, landmarks, 0.1)


FILTERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "none": lambda f, lm: f,
    "smooth_light": lambda f, lm: smooth_skin(f, lm, 0.3),
    "smooth_medium": lambda f, lm: smooth_skin(f, lm, 0.6),
    "smooth_strong": lambda f, lm: smooth_skin(f, lm, 1.0),
    "smooth_guided": lambda f, lm: smooth_skin(f, lm, 0.8, "guided"),
    "slim_face": lambda f, lm: slim_face(f, lm, 1.0),
    "big_eyes": lambda f, lm: enlarge_eyes(f, lm, 0.2),
    "whiten": lambda f, lm: whiten(f, lm, 0.7),
    "grade_warm": lambda f, lm: grade(f, "warm"),
    "grade_teal_orange": lambda f, lm: grade(f, "teal_orange"),
    "sharpen": lambda f, lm: sharpen(f, 1.2),
    "sticker_emoji": lambda f, lm: sticker(f, lm, "emoji"),
    "sticker_cheeks": lambda f, lm: sticker(f, lm, "cheeks"),
    "sticker_dog": lambda f, lm: sticker(f, lm, "dog"),
    "beauty_medium": beauty_medium,
    "heavy_beauty": heavy_beauty,
}


FIT_FILTERS = ("smooth", "warp", "whiten", "grade", "sharpen", "sticker", "beauty")


def random_filter(frame: np.ndarray, faces: list[np.ndarray], kind: str, rng) -> np.ndarray:
    """`frame` with filter `kind` (a FIT_FILTERS entry) at random strengths applied to each face
    (landmarks in `faces`), as the face-swap probe's fitting uses them: the presets of FILTERS are
    what the benchmark measures, these vary around them so that fitting does not learn the presets."""
    out = frame
    if kind == "grade":
        return grade(out, rng.choice(("warm", "teal_orange", "fade")))
    if kind == "sharpen":
        return sharpen(out, rng.uniform(0.5, 1.5), rng.uniform(1.0, 2.0))
    extras = [s for s in ("whiten", "slim", "eyes", "grade", "sharpen") if rng.random() < 0.6]
    steps = {"smooth": ["smooth"], "warp": ["slim", "eyes"], "whiten": ["whiten"], "sticker": ["sticker"],
             "beauty": ["smooth", *extras]}[kind]
    for step in steps:
        if step == "grade":
            out = grade(out, rng.choice(("warm", "teal_orange", "fade")))
        elif step == "sharpen":
            out = sharpen(out, rng.uniform(0.2, 0.8))
        for landmarks in faces if step not in ("grade", "sharpen") else []:
            if step == "smooth":
                out = smooth_skin(out, landmarks, rng.uniform(0.3, 1.0), rng.choice(("bilateral", "guided")))
            elif step == "slim":
                out = slim_face(out, landmarks, rng.uniform(0.3, 1.0))
            elif step == "eyes":
                out = enlarge_eyes(out, landmarks, rng.uniform(0.05, 0.25))
            elif step == "whiten":
                out = whiten(out, landmarks, rng.uniform(0.3, 1.0))
            elif step == "sticker":
                out = sticker(out, landmarks, rng.choice(("emoji", "cheeks", "dog")))
    return out
