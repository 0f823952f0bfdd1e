"""Faces pasted onto other people's heads, for tests, benchmarks and the face-swap probe's fitting.

The photos (package photos and face_recognition's photos), how their faces are found, and the two
ways a face is pasted: ``clone_face`` (cv2.seamlessClone, as hand-made composites do) and
``alpha_paste`` (colour transfer and a feathered mask, as face-swap tools do). ``HELD_OUT`` names
the people the shipped face-swap probe never saw while fitting (tools/fit_face_swap_probe.py), so
tests that paste them test it on unseen people.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from gallery.enroll import pad_for_detection
from pipeline.faces.align import ARCFACE_TEMPLATE, alignment_matrix
from pipeline.faces.detector import DetectedFace, FaceDetector
from samples.packages import dlib_johns, face_recognition_photos
from samples.photos import package_photo

HELD_OUT = ("grace_hopper", "yaoming")   # people the shipped face-swap probe never sees (the e2e tests use them)
TARGET_PHOTOS = ("players.jpg", "gdp.jpg", "yaoming.jpg", "t1.jpg", "grace_hopper.jpg", "astronaut.png")
TARGET_FR = ("obama", "obama2", "obama3", "biden")
SOURCE_PHOTOS = ("yaoming.jpg", "grace_hopper.jpg", "astronaut.png", "obama", "biden", "t1.jpg", "gdp.jpg")
SOURCE_JOHNS = 3   # the first photos of each of dlib's johns serve as pasted faces


@dataclass(frozen=True)
class SourceFace:
    name: str
    image: np.ndarray
    landmarks: np.ndarray


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[0] - landmarks[1]))


def clone_face(target: np.ndarray, target_landmarks: np.ndarray, source: SourceFace, mode: str,
               mask: str) -> np.ndarray:
    """`source`'s face warped onto the target face by a 5-point similarity and seamlessly cloned."""
    matrix, _ = cv2.estimateAffinePartial2D(source.landmarks.astype(np.float32), target_landmarks.astype(np.float32),
                                            method=cv2.LMEDS)
    h, w = target.shape[:2]
    warped = cv2.warpAffine(source.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    region = face_mask((h, w), target_landmarks, mask)
    x, y, bw, bh = cv2.boundingRect(region)
    flag = cv2.NORMAL_CLONE if mode == "normal" else cv2.MIXED_CLONE
    return cv2.seamlessClone(warped, target, region, (x + bw // 2, y + bh // 2), flag)


def alpha_paste(target: np.ndarray, landmarks: np.ndarray, source: SourceFace, mask_kind: str,
                rng: random.Random) -> np.ndarray:
    """Face-swap-tool style: warp by the 5 landmarks, match colour in Lab, paste with a feathered mask."""
    matrix, _ = cv2.estimateAffinePartial2D(source.landmarks.astype(np.float32), landmarks.astype(np.float32),
                                            method=cv2.LMEDS)
    h, w = target.shape[:2]
    warped = cv2.warpAffine(source.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = face_mask((h, w), landmarks, mask_kind).astype(np.float32) / 255.0
    feather = max(1.0, eye_distance(landmarks) * rng.uniform(0.08, 0.25))
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=int(feather // 2) + 1)
    mask = cv2.GaussianBlur(mask, (0, 0), feather)[..., None]
    inside = mask[..., 0] > 0.5
    src, dst = (cv2.cvtColor(x, cv2.COLOR_BGR2LAB).astype(np.float32) for x in (warped, target))
    for c in range(3):
        s, d = src[..., c][inside], dst[..., c][inside]
        src[..., c] = (src[..., c] - s.mean()) / (s.std() + 1e-3) * d.std() + d.mean()
    warped = cv2.cvtColor(np.clip(src, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
    return np.clip(warped * mask + target * (1.0 - mask), 0, 255).astype(np.uint8)


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, kind: str) -> np.ndarray:
    """Convex face mask: the brows-to-chin ellipse, or the 5-landmark hull dilated 1.6x."""
    to_image = cv2.invertAffineTransform(alignment_matrix(landmarks))
    if kind == "ellipse":
        angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        template = np.array([56.0, 68.0]) + np.stack([np.cos(angles) * 38.0, np.sin(angles) * 50.0], axis=1)
    else:
        centre = ARCFACE_TEMPLATE.mean(axis=0)
        template = centre + (ARCFACE_TEMPLATE - centre) * 1.6
    points = template @ to_image[:, :2].T + to_image[:, 2]
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 255)
    mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0  # seamlessClone needs a margin
    return mask


# ---------------------------------------------------------------- photos and faces

def target_images(longest: int = 1280) -> dict[str, np.ndarray]:
    """The real photos, shrunk to at most `longest` px on their long side (even sizes, for H.264)."""
    photos = face_recognition_photos()
    paths = {name: package_photo(name) for name in TARGET_PHOTOS} | {name: photos[name] for name in TARGET_FR}
    images = {}
    for name, path in paths.items():
        image = cv2.imread(str(path))
        shrink = min(1.0, longest / max(image.shape[:2]))
        size = (int(image.shape[1] * shrink) // 2 * 2, int(image.shape[0] * shrink) // 2 * 2)
        images[name] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return images


def frontal_faces(detector: FaceDetector, image: np.ndarray, min_px: float) -> list[DetectedFace]:
    faces = [f for f in detector.detect(image)
             if min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]) >= min_px and f.score >= 0.6]
    return sorted(faces, key=lambda f: (f.bbox[1], f.bbox[0]))


def source_faces(detector: FaceDetector, images: dict[str, np.ndarray]) -> list[SourceFace]:
    """Faces to paste: every frontal face of SOURCE_PHOTOS in `images`, and the first SOURCE_JOHNS
    photos of each of dlib's johns."""
    sources = [SourceFace(f"{name}#{i}", images[name], f.landmarks)
               for name in SOURCE_PHOTOS for i, f in enumerate(frontal_faces(detector, images[name], 50))]
    for person, paths in dlib_johns().items():
        for path in paths[:SOURCE_JOHNS]:
            chip = pad_for_detection(cv2.imread(str(path)))
            found = frontal_faces(detector, chip, 40)
            if found:
                sources.append(SourceFace(f"{person}/{path.stem}", chip, found[0].landmarks))
    return sources


def matching_face(detector: FaceDetector, image: np.ndarray, box: np.ndarray) -> DetectedFace | None:
    """The detected face overlapping `box` most (IoU >= 0.4), e.g. after encoding."""
    best, best_iou = None, 0.4
    for face in detector.detect(image):
        a = face.bbox
        inter = max(0.0, min(a[2], box[2]) - max(a[0], box[0])) * max(0.0, min(a[3], box[3]) - max(a[1], box[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
        if inter / union >= best_iou:
            best, best_iou = face, inter / union
    return best
