"""Face quality: which faces may be used for identity decisions, and why not the others."""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.config import QualityConfig
from pipeline.faces.align import ARCFACE_TEMPLATE, alignment_matrix
from pipeline.faces.detector import DetectedFace
from pipeline.types import FaceQuality

_TEMPLATE = ARCFACE_TEMPLATE
_EYE_MID = (_TEMPLATE[0] + _TEMPLATE[1]) / 2
_MOUTH_MID = (_TEMPLATE[3] + _TEMPLATE[4]) / 2
_FRONTAL_PITCH_RATIO = float((_TEMPLATE[2, 1] - _EYE_MID[1]) / (_MOUTH_MID[1] - _EYE_MID[1]))


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float]:
    """Rough (yaw, pitch) in [-1, 1] from where the nose sits between eyes and mouth.

    Measured in the aligned frame so in-plane roll does not count as yaw. 0 is frontal; |yaw|
    near 1 is a profile, where the nose passes the eye line.
    """
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
    yaw, pitch = pose_from_landmarks(landmarks)
    return min(bbox[2] - bbox[0], bbox[3] - bbox[1]) >= min_px and max(abs(yaw), abs(pitch)) <= max_pose


def sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian: low for blurred or upscaled-from-tiny faces."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(face: DetectedFace, crop_bgr: np.ndarray, config: QualityConfig) -> FaceQuality:
    x1, y1, x2, y2 = face.bbox
    size = float(min(x2 - x1, y2 - y1))
    sharp = sharpness(crop_bgr)
    yaw, pitch = pose_from_landmarks(face.landmarks)
    reason = None
    if size < config.min_face_px:
        reason = f"face too small ({size:.0f} px < {config.min_face_px:.0f} px)"
    elif face.score < config.min_det_score:
        reason = f"low detector confidence ({face.score:.2f} < {config.min_det_score:.2f})"
    elif abs(yaw) > config.max_yaw:
        reason = f"face turned too far sideways (yaw {yaw:+.2f}, limit {config.max_yaw:.2f})"
    elif abs(pitch) > config.max_pitch:
        reason = f"face tilted too far up or down (pitch {pitch:+.2f}, limit {config.max_pitch:.2f})"
    elif sharp < config.min_sharpness:
        reason = f"face too blurred (sharpness {sharp:.0f} < {config.min_sharpness:.0f})"
    return FaceQuality(size_px=size, det_score=face.score, sharpness=sharp, yaw=yaw, pitch=pitch,
                       usable=reason is None, reason=reason)
