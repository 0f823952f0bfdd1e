"""Reference images → quality-checked face embeddings, with a reason for every rejection."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pipeline.config import QualityConfig
from pipeline.faces.detector import FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess

MAX_REFERENCE_BYTES = 40 << 20
MAX_REFERENCE_PIXELS = 8192 * 8192
CONSISTENCY_SIMILARITY = 0.20  # a reference this far from the others is likely another person


@dataclass(frozen=True)
class AcceptedReference:
    path: Path
    sha256: str
    embedding: np.ndarray
    bbox: list[float]
    det_score: float
    sharpness: float
    yaw: float


@dataclass(frozen=True)
class RejectedReference:
    path: Path
    reason: str


@dataclass(frozen=True)
class EnrollmentResult:
    accepted: list[AcceptedReference]
    rejected: list[RejectedReference]


class Enroller:
    """Turns reference photos into embeddings. `face` picks among several faces in one photo:
    None rejects such photos, "largest" takes the largest face, an integer the n-th face
    from the left."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, quality: QualityConfig):
        self._detector = detector
        self._embedder = embedder
        self._quality = quality

    def enroll(self, paths: Sequence[Path], face: str | int | None = None) -> EnrollmentResult:
        accepted: list[AcceptedReference] = []
        rejected: list[RejectedReference] = []
        for path in map(Path, paths):
            outcome = self._one(path, face)
            (accepted if isinstance(outcome, AcceptedReference) else rejected).append(outcome)
        kept, outliers = _consistent(accepted)
        return EnrollmentResult(kept, rejected + outliers)

    def _one(self, path: Path, face: str | int | None) -> AcceptedReference | RejectedReference:
        image, error = _read_image(path)
        if image is None:
            return RejectedReference(path, error)
        detections = self._detector.detect(image)
        if not detections:  # tight face crops (common for reference photos) need context around them
            image = pad_for_detection(image)
            detections = self._detector.detect(image)
        if not detections:
            return RejectedReference(path, "no face found")
        crops = [align_face(image, d.landmarks) for d in detections]
        qualities = [assess(d, c, self._quality) for d, c in zip(detections, crops)]
        usable = [i for i, q in enumerate(qualities) if q.usable]
        chosen = _choose(detections, usable, face)
        if isinstance(chosen, str):
            if not usable:
                return RejectedReference(path, f"no usable face: {qualities[0].reason}")
            return RejectedReference(path, chosen)
        detection, quality = detections[chosen], qualities[chosen]
        if not quality.usable:
            return RejectedReference(path, f"chosen face unusable: {quality.reason}")
        embedding = self._embedder.embed([crops[chosen]])[0]
        return AcceptedReference(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                 embedding=embedding, bbox=[float(v) for v in detection.bbox],
                                 det_score=detection.score, sharpness=quality.sharpness, yaw=quality.yaw)


def pad_for_detection(image: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """Surround a tightly cropped face with a replicated border so the detector sees a whole head."""
    h, w = image.shape[:2]
    dy, dx = int(h * fraction), int(w * fraction)
    return cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_REPLICATE)


def _read_image(path: Path) -> tuple[np.ndarray | None, str]:
    if not path.is_file():
        return None, "no such file"
    size = path.stat().st_size
    if size == 0:
        return None, "empty file"
    if size > MAX_REFERENCE_BYTES:
        return None, f"file too large ({size >> 20} MiB > {MAX_REFERENCE_BYTES >> 20} MiB)"
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    header = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if header is None:
        return None, "not a readable image"
    if header.shape[0] * header.shape[1] * 64 > MAX_REFERENCE_PIXELS:
        return None, "image too large (over 67 megapixels)"
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None, "not a readable image"
    return image, ""


def _choose(detections, usable: list[int], face: str | int | None) -> int | str:
    if face is None:
        if len(usable) == 1:
            return usable[0]
        if len(usable) > 1:
            return f"several faces ({len(usable)}); choose one with --face largest or --face N"
        return "no usable face"
    if face == "largest":
        pool = usable or list(range(len(detections)))
        return max(pool, key=lambda i: float(np.prod(detections[i].bbox[2:] - detections[i].bbox[:2])))
    order = sorted(range(len(detections)), key=lambda i: float(detections[i].bbox[0]))
    index = int(face)
    if not 0 <= index < len(order):
        return f"face {index} requested but only {len(order)} found"
    return order[index]


def _consistent(accepted: list[AcceptedReference]) -> tuple[list[AcceptedReference], list[RejectedReference]]:
    """With three or more references, drop those unlike all the others (a wrong photo uploaded)."""
    if len(accepted) < 3:
        return accepted, []
    embeddings = np.stack([a.embedding for a in accepted])
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, np.nan)
    kept, rejected = [], []
    for i, ref in enumerate(accepted):
        best_other = float(np.nanmax(sims[i]))
        if best_other < CONSISTENCY_SIMILARITY:
            rejected.append(RejectedReference(
                ref.path, f"does not look like the other references (best similarity {best_other:.2f})"))
        else:
            kept.append(ref)
    return kept, rejected
