"""5-point alignment onto ArcFace's canonical 112x112 crop."""
from __future__ import annotations

import cv2
import numpy as np
from insightface.utils import face_align

ARCFACE_TEMPLATE = face_align.arcface_dst.astype(np.float32)  # landmark positions in a 112x112 crop


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """2x3 similarity transform taking the 5 landmarks onto ArcFace's template."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), ARCFACE_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all on a line): fall back to a plain least-squares fit
        matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), ARCFACE_TEMPLATE)
    return matrix if matrix is not None else np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64)


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """ArcFace's canonical 112x112 crop from the 5 landmarks."""
    return cv2.warpAffine(image_bgr, alignment_matrix(landmarks), (112, 112), borderValue=0.0)
