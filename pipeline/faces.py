"""Face detection (SCRFD), 5-point alignment and ArcFace embeddings, on sessions made once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from insightface.model_zoo import get_model
from insightface.utils import face_align

from pipeline.config import DetectionConfig
from pipeline.models import ModelName, available_providers, locate_model, log_session, session_options


@dataclass(frozen=True)
class DetectedFace:
    bbox: np.ndarray       # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth, right mouth


class FaceDetector:
    """SCRFD with keypoints; the image is letterboxed into a square input by the model wrapper."""

    def __init__(self, model, config: DetectionConfig):
        self._model = model
        self._config = config
        # ctx_id >= 0 keeps the session's own providers (a negative id would force CPU).
        model.prepare(0, input_size=(config.input_size, config.input_size), det_thresh=config.score_threshold)

    @classmethod
    def load(cls, config: DetectionConfig, path: Path | None = None, prefer_gpu: bool = True) -> "FaceDetector":
        path = path or locate_model(ModelName.FACE_DETECTOR)
        model = get_model(str(path), providers=available_providers(prefer_gpu),
                          sess_options=session_options(config.threads))
        log_session(ModelName.FACE_DETECTOR, path, model.session)
        return cls(model, config)

    @property
    def provider(self) -> str:
        return self._model.session.get_providers()[0]

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        boxes, keypoints = self._model.detect(image_bgr)
        return [
            DetectedFace(bbox=boxes[i, :4].astype(np.float32), score=float(boxes[i, 4]),
                         landmarks=keypoints[i].astype(np.float32))
            for i in range(boxes.shape[0])
        ]


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


class FaceEmbedder:
    """ArcFace embeddings, batched, L2-normalised so inner product is cosine similarity."""

    def __init__(self, model, batch_size: int = 32):
        self._model = model
        self._batch_size = batch_size
        model.prepare(0)

    @classmethod
    def load(cls, config: DetectionConfig, path: Path | None = None, prefer_gpu: bool = True) -> "FaceEmbedder":
        path = path or locate_model(ModelName.FACE_EMBEDDER)
        model = get_model(str(path), providers=available_providers(prefer_gpu),
                          sess_options=session_options(config.threads))
        log_session(ModelName.FACE_EMBEDDER, path, model.session)
        return cls(model, config.embed_batch_size)

    @property
    def dim(self) -> int:
        return 512

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._model.get_feat(list(crops[i:i + self._batch_size]))
                 for i in range(0, len(crops), self._batch_size)]
        feats = np.concatenate(parts, axis=0).astype(np.float32)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
