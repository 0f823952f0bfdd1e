"""Character references: the stills and clip frames to register, embedded whole and cropped by CLIP.

A character is an identity of kind "character" in the identities table. Where its references show
a usable face, those faces go to the face index like anyone's (a live-action role is found through
the actor's face); every reference is also embedded whole and as a few crops by the CLIP tower, kept
in `character_references` and searched through the character index (gallery/gallery.py,
`CharacterGallery`). `character_cast` links a character to the registered actors who play it.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gallery.enroll import MAX_REFERENCE_BYTES, RejectedReference
from pipeline.characters import CharacterConfig, ImageEmbedder, choose_crops, cut
from pipeline.config import SamplingConfig
from pipeline.faces.detector import FaceDetector
from pipeline.video import VideoInputError, probe, sample_frames

log = logging.getLogger(__name__)


# -- references ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceImage:
    """A still to register: a file as given, or a frame taken from a reference clip (`source`)."""

    path: Path
    source: Path
    t_s: float | None = None

    @property
    def label(self) -> str:
        return str(self.source) if self.t_s is None else f"{self.source}@{self.t_s:.2f}s"


@dataclass(frozen=True)
class CharacterReference:
    image: ReferenceImage
    sha256: str
    region: str
    box: tuple[int, int, int, int]
    embedding: np.ndarray


@dataclass(frozen=True)
class CharacterEnrollment:
    references: list[CharacterReference]
    rejected: list[RejectedReference]


def reference_images(paths: Sequence[Path], frames_dir: Path, config: CharacterConfig,
                     sampling: SamplingConfig) -> tuple[list[ReferenceImage], list[RejectedReference]]:
    """Stills as they are; a clip becomes up to `max_reference_frames` frames, `reference_interval_s`
    apart, written as PNG under `frames_dir` so both embedders and the reference copies see stills."""
    images, rejected = [], []
    for path in map(Path, paths):
        if not path.is_file():
            rejected.append(RejectedReference(path, "no such file"))
        elif cv2.haveImageReader(str(path)):
            images.append(ReferenceImage(path, path))
        else:
            try:
                images += _clip_frames(path, frames_dir, config, sampling)
            except VideoInputError as exc:
                rejected.append(RejectedReference(path, f"neither an image nor a readable clip ({exc})"))
    return images, rejected


def _clip_frames(path: Path, frames_dir: Path, config: CharacterConfig,
                 sampling: SamplingConfig) -> list[ReferenceImage]:
    info = probe(path, sampling)
    every = sampling.model_copy(update={"interval_s": config.reference_interval_s, "scene_cuts": False})
    frames_dir.mkdir(parents=True, exist_ok=True)
    taken = []
    for frame in sample_frames(info, every):
        target = frames_dir / f"{path.stem}@{frame.t_s:08.3f}s.png"
        cv2.imwrite(str(target), frame.image)
        taken.append(ReferenceImage(target, path, frame.t_s))
        if len(taken) >= config.max_reference_frames:
            break
    return taken


class CharacterEnroller:
    """Reference stills → CLIP embeddings of the whole image, the character's face and the most
    salient region. `face` picks among several faces as for face enrollment; with several faces and
    no choice, no face crop is taken (it could be someone else's)."""

    def __init__(self, detector: FaceDetector, embedder: ImageEmbedder, config: CharacterConfig):
        self._detector = detector
        self._embedder = embedder
        self._config = config

    def enroll(self, images: Sequence[ReferenceImage], face: str | int | None = None) -> CharacterEnrollment:
        crops, pending, rejected = [], [], []
        for image in images:
            if image.path.stat().st_size > MAX_REFERENCE_BYTES:
                rejected.append(RejectedReference(image.path, "file too large"))
                continue
            pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if pixels is None:
                rejected.append(RejectedReference(image.path, "not a readable image"))
                continue
            sha256 = hashlib.sha256(image.path.read_bytes()).hexdigest()
            faces = _chosen_faces([d.bbox for d in self._detector.detect(pixels)], face)
            for crop in choose_crops(pixels, faces, self._config):
                crops.append((image, sha256, crop))
                pending.append(cut(pixels, crop.box))
        embeddings = self._embedder.embed(pending, self._config.batch_size)
        references = [CharacterReference(image, sha256, crop.region, crop.box, embedding)
                      for (image, sha256, crop), embedding in zip(crops, embeddings)]
        return CharacterEnrollment(references, rejected)


def _chosen_faces(boxes: list[np.ndarray], face: str | int | None) -> list[np.ndarray]:
    if face is None:
        return boxes if len(boxes) == 1 else []
    if face == "largest":
        return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:1]
    ordered = sorted(boxes, key=lambda b: b[0])
    return [ordered[int(face)]] if 0 <= int(face) < len(ordered) else []
