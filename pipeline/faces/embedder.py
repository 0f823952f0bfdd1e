"""ArcFace embeddings, batched, on an onnxruntime session made once."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from insightface.model_zoo import get_model

from pipeline.config import DetectionConfig
from pipeline.models import ModelName, available_providers, locate_model, log_session, session_options


class FaceEmbedder:
    """ArcFace embeddings, batched, L2-normalised so inner product is cosine similarity."""

    def __init__(self, model, batch_size: int = 32):
        self._model = model
        self._batch_size = batch_size
        model.prepare(0)

    @classmethod
    def load(cls, config: DetectionConfig, path: Path | None = None, prefer_gpu: bool = True) -> FaceEmbedder:
        path = path or locate_model(ModelName.FACE_EMBEDDER)
        providers = available_providers(prefer_gpu)
        model = get_model(str(path), providers=providers, sess_options=session_options(config.threads))
        log_session(ModelName.FACE_EMBEDDER, path, model.session, providers)
        return cls(model, config.embed_batch_size)

    @property
    def provider(self) -> str:
        return self._model.session.get_providers()[0]

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
