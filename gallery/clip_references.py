"""A reference clip (an interview, a vlog) → the dominant person's most varied sharp faces, as stills.

Rights holders often have footage, not portraits. The clip is sampled every `interval_s`; every
face that carries identity is embedded; faces are grouped into people (a face joins the person whose
mean embedding it is closest to, when at least `link_similarity`, the match threshold: ArcFace
genuine pairs score 0.49+ and strangers up to 0.33 on our measurement, docs/thresholds.md); the
person seen most is taken when seen at least twice as often as the next (else the caller must pick
one); and up to `max_references` of that person's faces are kept, each passing the reference checks,
chosen to differ most in pose and appearance and to lie at least `min_gap_s` apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import cv2
import numpy as np
from pydantic import BaseModel, Field

from pipeline.config import SamplingConfig
from pipeline.faces.align import align_face
from pipeline.faces.detector import FaceDetector, min_side
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.pose import pose_from_5_points
from pipeline.faces.quality import sharpness
from pipeline.types import Frame, VideoInfo
from pipeline.video import sample_frames


class ClipReferenceConfig(BaseModel):
    interval_s: float = Field(0.5, gt=0.0, le=10.0, description="Seconds between frames looked at.")
    max_frames: int = Field(240, ge=1, le=5000, description="Frames looked at, at most (2 minutes at 0.5 s).")
    link_similarity: float = Field(
        0.40, ge=-1.0, le=1.0, description="Cosine similarity to a person's mean face from which a face is "
        "theirs: the match threshold.")
    dominance: float = Field(
        2.0, ge=1.0, description="The person seen most is the clip's person when seen this many times as "
        "often as the next; otherwise `--face` must choose.")
    max_references: int = Field(5, ge=1, le=20, description="References kept from one clip.")
    min_gap_s: float = Field(1.0, ge=0.0, description="Least time between two references kept.")


@dataclass
class ClipFace:
    t_s: float
    frame: np.ndarray
    bbox: np.ndarray
    landmarks: np.ndarray
    det_score: float
    embedding: np.ndarray
    sharpness: float
    yaw: float  # degrees, 5-point fit (the 106-point fit decides later, for the faces kept)


@dataclass
class Person:
    faces: list[ClipFace] = field(default_factory=list)
    total: np.ndarray = field(default_factory=lambda: np.zeros(512, dtype=np.float32))

    @property
    def centre(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)

    def add(self, face: ClipFace) -> None:
        self.faces.append(face)
        self.total = self.total + face.embedding


@dataclass(frozen=True)
class ClipPick:
    """What a clip gave: the faces kept (best first) or why none, and who was seen, for the report."""

    faces: list[ClipFace]
    problem: str | None
    people: list[dict]
    frames_looked_at: int


def faces_in_clip(info: VideoInfo, detector: FaceDetector, embedder: FaceEmbedder, config: ClipReferenceConfig,
                  sampling: SamplingConfig, min_face_px: float, min_det_score: float) -> tuple[list[ClipFace], int]:
    """Every face of the sampled frames that carries identity, embedded (`info`: the caller's probe)."""
    every = sampling.model_copy(update={"interval_s": config.interval_s, "scene_cuts": False})
    faces, frames = [], 0
    for frame in sample_frames(info, every):
        frames += 1
        faces += _faces(frame, detector, embedder, min_face_px, min_det_score)
        if frames >= config.max_frames:
            break
    return faces, frames


def _faces(frame: Frame, detector: FaceDetector, embedder: FaceEmbedder, min_face_px: float,
           min_det_score: float) -> list[ClipFace]:
    found = [d for d in detector.detect(frame.image)
             if min_side(d.bbox) >= min_face_px and d.score >= min_det_score]
    crops = [align_face(frame.image, d.landmarks) for d in found]
    embeddings = embedder.embed(crops)
    return [ClipFace(frame.t_s, frame.image, d.bbox, d.landmarks, d.score, e, sharpness(c),
                     pose_from_5_points(d.bbox, d.landmarks).yaw)
            for d, c, e in zip(found, crops, embeddings)]


def group_people(faces: list[ClipFace], link_similarity: float) -> list[Person]:
    """People in the clip, most seen first. Sharp faces found the groups, so a blurred frame does not
    start a person of its own when a clear view of them exists."""
    people: list[Person] = []
    for face in sorted(faces, key=lambda f: -f.sharpness):
        sims = [float(p.centre @ face.embedding) for p in people]
        best = int(np.argmax(sims)) if sims else -1
        if best >= 0 and sims[best] >= link_similarity:
            people[best].add(face)
        else:
            person = Person()
            person.add(face)
            people.append(person)
    return sorted(people, key=lambda p: -len(p.faces))


def pick_person(people: list[Person], face: str | int | None, dominance: float) -> tuple[Person | None, str | None]:
    """The clip's person: the one seen most when dominant; `face` "largest" takes the one seen most
    regardless, an integer N the N-th most seen (0 = most seen)."""
    if not people:
        return None, "no usable face in the clip"
    if face is None:
        if len(people) > 1 and len(people[0].faces) < dominance * len(people[1].faces):
            shares = ", ".join(f"person {i} in {len(p.faces)} faces" for i, p in enumerate(people[:4]))
            return None, (f"no single dominant person ({shares}); choose one with --face largest or --face N "
                          "(the N-th most seen, 0 = most seen)")
        return people[0], None
    index = 0 if face == "largest" else int(face)
    if not 0 <= index < len(people):
        return None, f"person {index} requested but only {len(people)} seen in the clip"
    return people[index], None


def diverse_faces(person: Person, config: ClipReferenceConfig,
                  acceptable: Callable[[ClipFace], bool]) -> list[ClipFace]:
    """Up to `max_references` faces that pass `acceptable`, the first the sharpest near-frontal one, each
    next the one most unlike those kept (pose difference in 30-degree steps plus embedding distance),
    sharper first among equals, at least `min_gap_s` from those kept."""
    pool = sorted(person.faces, key=lambda f: (-(f.sharpness * (1.0 if abs(f.yaw) <= 20 else 0.5))))
    kept: list[ClipFace] = []
    while len(kept) < config.max_references:
        best, best_distance = None, -1.0
        for face in pool:
            if any(abs(face.t_s - k.t_s) < config.min_gap_s for k in kept):
                continue
            distance = min((abs(face.yaw - k.yaw) / 30.0 + 1.0 - float(face.embedding @ k.embedding) for k in kept),
                           default=0.0)
            if distance > best_distance + 1e-6 and acceptable(face):
                best, best_distance = face, distance
            if not kept and best is not None:
                break  # the first: the sharpest near-frontal acceptable face
        if best is None:
            break
        kept.append(best)
        pool.remove(best)
    return kept


def write_still(face: ClipFace, source: Path, folder: Path) -> Path:
    """The whole frame of a kept face as a PNG, so the reference copy shows it in its context."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.stem}@{face.t_s:08.3f}s.png"
    cv2.imwrite(str(target), face.frame)
    return target
