"""Reference images → quality-checked face embeddings, with a reason for every rejection."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence

import cv2
import numpy as np

from gallery.clip_references import (ClipFace, ClipReferenceConfig, diverse_faces, faces_in_clip, group_people,
                                     pick_person, write_still)
from pipeline.config import ReferenceQualityConfig, SamplingConfig
from pipeline.faces.align import align_face
from pipeline.faces.detector import FaceDetector, min_side
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.pose import HeadPose, PoseEstimator
from pipeline.faces.quality import reference_problem, sharpness
from pipeline.types import VideoInfo
from pipeline.video import VideoInputError, probe

MAX_REFERENCE_BYTES = 40 << 20
MAX_REFERENCE_PIXELS = 8192 * 8192
# A reference this far from every other is likely another person. Between two frontal faces the bar is
# CONSISTENCY_SIMILARITY; it falls by up to POSE_ALLOWANCE as the two faces' yaws differ by up to 90
# degrees, since a three-quarter view of the same person is legitimately less like a frontal one.
CONSISTENCY_SIMILARITY = 0.20
POSE_ALLOWANCE = 0.10


@dataclass(frozen=True)
class AcceptedReference:
    path: Path
    sha256: str
    embedding: np.ndarray
    bbox: list[float]
    det_score: float
    sharpness: float
    yaw: float       # degrees (106-point fit): references are tagged with their pose
    pitch: float
    label: str = ""  # how the user knows it: the file as given, or "clip.mp4@12.50s" for a clip's frame


@dataclass(frozen=True)
class RejectedReference:
    path: Path
    reason: str


@dataclass(frozen=True)
class EnrollmentResult:
    accepted: list[AcceptedReference]
    rejected: list[RejectedReference]
    clips: list[dict] = field(default_factory=list)  # per reference clip: frames looked at, people seen, kept


class Enroller:
    """Turns reference photos and clips into embeddings. `face` picks among several faces in one photo:
    None rejects such photos, "largest" takes the largest face, an integer the n-th face from the left;
    in a clip it picks a person: "largest" the one seen most, N the N-th most seen."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, pose: PoseEstimator,
                 quality: ReferenceQualityConfig, clips: ClipReferenceConfig | None = None,
                 sampling: SamplingConfig | None = None):
        self._detector = detector
        self._embedder = embedder
        self._pose = pose
        self._quality = quality
        self._clips = clips or ClipReferenceConfig()
        self._sampling = sampling or SamplingConfig()

    def enroll(self, paths: Sequence[Path], face: str | int | None = None,
               frames_dir: Path | None = None) -> EnrollmentResult:
        """`frames_dir` receives the stills taken from reference clips; it must outlive the registration
        (the gallery copies them)."""
        accepted: list[AcceptedReference] = []
        rejected: list[RejectedReference] = []
        clips: list[dict] = []
        for path in map(Path, paths):
            video = _as_video(path, self._sampling)
            if video is not None:
                if frames_dir is None:
                    raise ValueError(f"{path}: a reference clip needs a folder for its stills")
                taken, refused, summary = self._clip(video, face, frames_dir)
                accepted += taken
                rejected += refused
                clips.append(summary)
                continue
            outcome = self._one(path, face)
            if isinstance(outcome, AcceptedReference):
                accepted.append(outcome)
            else:
                rejected.append(outcome)
        kept, outliers = _consistent(accepted)
        return EnrollmentResult(kept, rejected + outliers, clips)

    def _clip(self, video: VideoInfo, face: str | int | None,
              frames_dir: Path) -> tuple[list[AcceptedReference], list[RejectedReference], dict]:
        path = video.path
        faces, frames = faces_in_clip(video, self._detector, self._embedder, self._clips, self._sampling,
                                      self._quality.min_face_px, self._quality.min_det_score)
        people = group_people(faces, self._clips.link_similarity)
        summary: dict = {"clip": str(path), "frames_looked_at": frames,
                         "people_seen": [len(p.faces) for p in people[:8]], "kept": []}
        person, problem = pick_person(people, face, self._clips.dominance)
        if person is None:
            return [], [RejectedReference(path, problem or "no person chosen")], summary
        poses: dict[int, HeadPose] = {}
        kept_faces: list[dict] = []

        def acceptable(candidate: ClipFace) -> bool:
            pose = self._pose.estimate(candidate.frame, candidate.bbox, candidate.landmarks)
            poses[id(candidate)] = pose
            problem = reference_problem(min_side(candidate.bbox), candidate.det_score, candidate.sharpness, pose,
                                        self._quality)
            return problem is None

        chosen = diverse_faces(person, self._clips, acceptable)
        if not chosen:
            return [], [RejectedReference(path, f"none of the {len(person.faces)} faces of the clip's person is a "
                                                "usable reference (small, blurred or in profile)")], summary
        accepted = []
        for kept in chosen:
            still = write_still(kept, path, frames_dir)
            pose = poses[id(kept)]
            label = f"{path.name}@{kept.t_s:.2f}s"
            accepted.append(AcceptedReference(
                path=still, sha256=hashlib.sha256(still.read_bytes()).hexdigest(), embedding=kept.embedding,
                bbox=[float(v) for v in kept.bbox], det_score=kept.det_score, sharpness=kept.sharpness,
                yaw=round(pose.yaw, 1), pitch=round(pose.pitch, 1), label=label))
            kept_faces.append({"t_s": round(kept.t_s, 2), "yaw": round(pose.yaw, 1), "pitch": round(pose.pitch, 1),
                               "sharpness": round(kept.sharpness, 1)})
        summary["kept"] = kept_faces
        summary["why"] = (f"the person seen in {len(person.faces)} of {sum(len(p.faces) for p in people)} faces; "
                          f"{len(chosen)} sharp faces kept that differ most in pose and appearance")
        return accepted, [], summary

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
        sharp = [sharpness(c) for c in crops]
        poses = [self._pose.estimate(image, d.bbox, d.landmarks) for d in detections]
        problems = [reference_problem(min_side(d.bbox), d.score, s, p, self._quality)
                    for d, s, p in zip(detections, sharp, poses)]
        usable = [i for i, problem in enumerate(problems) if problem is None]
        chosen = _choose(detections, usable, face)
        if isinstance(chosen, str):
            if not usable:
                return RejectedReference(path, f"no usable face: {problems[0]}")
            return RejectedReference(path, chosen)
        detection, pose = detections[chosen], poses[chosen]
        if problems[chosen] is not None:
            return RejectedReference(path, f"chosen face unusable: {problems[chosen]}")
        embedding = self._embedder.embed([crops[chosen]])[0]
        return AcceptedReference(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                 embedding=embedding, bbox=[float(v) for v in detection.bbox],
                                 det_score=detection.score, sharpness=sharp[chosen], yaw=round(pose.yaw, 1),
                                 pitch=round(pose.pitch, 1), label=str(path))


def _as_video(path: Path, sampling: SamplingConfig) -> VideoInfo | None:
    """The probe of a reference that is a clip (a file no image reader takes, that a video probe opens);
    None for a photo or anything unreadable, which the photo path then refuses with its reason."""
    if not path.is_file() or cv2.haveImageReader(str(path)):
        return None
    try:
        return probe(path, sampling)
    except VideoInputError:
        return None


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
    """With three or more references, drop those unlike all the others (a wrong photo uploaded), the bar
    lowered for pairs seen from different angles."""
    if len(accepted) < 3:
        return accepted, []
    embeddings = np.stack([a.embedding for a in accepted])
    yaws = np.array([a.yaw for a in accepted])
    bars = CONSISTENCY_SIMILARITY - POSE_ALLOWANCE * np.minimum(np.abs(yaws[:, None] - yaws[None, :]), 90.0) / 90.0
    lead = embeddings @ embeddings.T - bars
    np.fill_diagonal(lead, -np.inf)
    kept, rejected = [], []
    for i, ref in enumerate(accepted):
        j = int(np.argmax(lead[i]))
        if lead[i, j] < 0:
            rejected.append(RejectedReference(
                ref.path, f"does not look like the other references (best similarity {lead[i, j] + bars[i, j]:.2f}, "
                          f"{bars[i, j]:.2f} needed at a yaw difference of {abs(yaws[i] - yaws[j]):.0f} degrees)"))
        else:
            kept.append(ref)
    return kept, rejected
