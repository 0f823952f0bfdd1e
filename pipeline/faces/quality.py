"""Face quality: which faces carry identity, how much each weighs, and which may be a reference."""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.config import QualityConfig, ReferenceQualityConfig
from pipeline.faces.align import ARCFACE_TEMPLATE, alignment_matrix
from pipeline.faces.detector import DetectedFace, min_side
from pipeline.faces.pose import HeadPose, pose_from_5_points
from pipeline.types import FaceQuality

_TEMPLATE = ARCFACE_TEMPLATE
_EYE_MID = (_TEMPLATE[0] + _TEMPLATE[1]) / 2
_MOUTH_MID = (_TEMPLATE[3] + _TEMPLATE[4]) / 2
_FRONTAL_PITCH_RATIO = float((_TEMPLATE[2, 1] - _EYE_MID[1]) / (_MOUTH_MID[1] - _EYE_MID[1]))


def frontal_ratio(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) as ratios in [-1, 1]: where the nose sits between eyes and mouth, in the aligned
    frame so roll does not count. Meaningful only near frontal (it saturates at ~40 degrees): the
    forensic signals use it to keep near-frontal faces, as they were measured (docs/synthetic.md)."""
    matrix = alignment_matrix(landmarks)
    pts = np.hstack([landmarks, np.ones((5, 1))]) @ matrix.T
    eye_mid = (pts[0] + pts[1]) / 2
    mouth_mid = (pts[3] + pts[4]) / 2
    half_eye = max(float(np.linalg.norm(pts[1] - pts[0]) / 2), 1e-6)
    yaw = (pts[2, 0] - eye_mid[0]) / half_eye
    span = max(float(mouth_mid[1] - eye_mid[1]), 1e-6)
    pitch = ((pts[2, 1] - eye_mid[1]) / span - _FRONTAL_PITCH_RATIO) / 0.5
    return float(np.clip(yaw, -1, 1)), float(np.clip(pitch, -1, 1))


def large_and_frontal(bbox: np.ndarray, landmarks: np.ndarray, min_px: float, max_pose: float) -> bool:
    """Whether a face is big enough (min of box width and height) and frontal enough (|yaw| and
    |pitch| at most `max_pose`) for the face-level forensic signals to measure it."""
    yaw, pitch = frontal_ratio(landmarks)
    return min_side(bbox) >= min_px and max(abs(yaw), abs(pitch)) <= max_pose


def sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian: low for blurred or upscaled-from-tiny faces."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(face: DetectedFace, crop_bgr: np.ndarray, config: QualityConfig) -> FaceQuality:
    """A scan face's quality: usable when it carries identity at all; pose, blur and size set its weight."""
    size = min_side(face.bbox)
    sharp = sharpness(crop_bgr)
    pose = pose_from_5_points(face.bbox, face.landmarks)
    reason = None
    if size < config.min_face_px:
        reason = f"face too small ({size:.0f} px < {config.min_face_px:.0f} px)"
    elif face.score < config.min_det_score:
        reason = f"low detector confidence ({face.score:.2f} < {config.min_det_score:.2f})"
    weight, band = _weight(size, sharp, pose.yaw, pose.pitch, config)
    return FaceQuality(size_px=size, det_score=face.score, sharpness=sharp, yaw=pose.yaw, pitch=pose.pitch,
                       usable=reason is None, reason=reason, weight=weight, band=band)


def _weight(size: float, sharp: float, yaw: float, pitch: float, config: QualityConfig) -> tuple[float, str]:
    """(weight, band): each of pose, blur and size scales the weight down, never to zero."""
    turn = max(abs(yaw), abs(pitch))
    span = max(config.profile_yaw_deg - config.frontal_yaw_deg, 1e-6)
    pose_weight = 1.0 - (1.0 - config.min_pose_weight) * min(max(turn - config.frontal_yaw_deg, 0.0) / span, 1.0)
    blur_weight = min(1.0, 0.4 + 0.6 * sharp / max(config.sharp, 1e-6))
    size_weight = min(1.0, 0.5 + 0.5 * max(size - config.min_face_px, 0.0)
                      / max(config.small_face_px - config.min_face_px, 1e-6))
    if sharp < config.sharp:
        band = "blurred"
    elif abs(yaw) >= config.profile_yaw_deg:
        band = "profile"
    elif turn > config.frontal_yaw_deg:
        band = "three_quarter"
    elif size < config.small_face_px:
        band = "small"
    else:
        band = "frontal"
    return round(pose_weight * blur_weight * size_weight, 4), band


def reference_problem(size: float, det_score: float, sharp: float, pose: HeadPose,
                      config: ReferenceQualityConfig) -> str | None:
    """Why a face cannot be a reference, in words; None when it can. Three-quarter views pass."""
    if size < config.min_face_px:
        return f"face too small ({size:.0f} px < {config.min_face_px:.0f} px)"
    if det_score < config.min_det_score:
        return f"low detector confidence ({det_score:.2f} < {config.min_det_score:.2f})"
    if abs(pose.yaw) > config.max_yaw_deg:
        return f"face in profile (yaw {pose.yaw:+.0f} degrees, limit {config.max_yaw_deg:.0f})"
    if abs(pose.pitch) > config.max_pitch_deg:
        return f"face tilted too far up or down (pitch {pose.pitch:+.0f} degrees, limit {config.max_pitch_deg:.0f})"
    if sharp < config.min_sharpness:
        return f"face too blurred (sharpness {sharp:.0f} < {config.min_sharpness:.0f})"
    return None
