"""Face detection: SCRFD with 5 keypoints, on an onnxruntime session made once."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from insightface.model_zoo import get_model

from pipeline.config import DetectionConfig
from pipeline.models import ModelName, available_providers, locate_model, log_session, session_options


def min_side(bbox: np.ndarray) -> float:
    """A face's size: the shorter side of its box (x1, y1, x2, y2), in pixels."""
    return float(min(bbox[2] - bbox[0], bbox[3] - bbox[1]))


@dataclass(frozen=True)
class DetectedFace:
    bbox: np.ndarray       # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth, right mouth


def input_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The detector input (width, height) for a picture: its long side `long_side`, its short side the
    picture's own aspect rounded up to SCRFD's stride of 32. The picture is scaled exactly as in a square
    letterbox of `long_side`, so faces keep their size; only the padding, which costs inference and finds
    nothing, goes (a 16:9 frame: 640x384 instead of 640x640)."""
    def short(side: int, other: int) -> int:
        return min(long_side, 32 * math.ceil(long_side * side / other / 32))
    if width >= height:
        return long_side, short(height, width)
    return short(width, height), long_side


class FaceDetector:
    """SCRFD with keypoints, on an input of the picture's own aspect (`input_shape`); the face-swap
    probe is fitted on crops aligned from these landmarks (docs/scanning.md)."""

    def __init__(self, model, config: DetectionConfig):
        self._model = model
        self._config = config
        # ctx_id >= 0 keeps the session's own providers (a negative id would force CPU).
        model.prepare(0, input_size=(config.input_size, config.input_size), det_thresh=config.score_threshold)

    @classmethod
    def load(cls, config: DetectionConfig, path: Path | None = None, prefer_gpu: bool = True) -> FaceDetector:
        path = path or locate_model(ModelName.FACE_DETECTOR)
        providers = available_providers(prefer_gpu)
        model = get_model(str(path), providers=providers, sess_options=session_options(config.threads))
        log_session(ModelName.FACE_DETECTOR, path, model.session, providers)
        return cls(model, config)

    @property
    def provider(self) -> str:
        return self._model.session.get_providers()[0]

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        height, width = image_bgr.shape[:2]
        boxes, keypoints = self._model.detect(image_bgr, input_size=input_shape(height, width, self._config.input_size))
        return [
            DetectedFace(bbox=boxes[i, :4].astype(np.float32), score=float(boxes[i, 4]),
                         landmarks=keypoints[i].astype(np.float32))
            for i in range(boxes.shape[0])
        ]
