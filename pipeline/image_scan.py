"""A still image through the same stages as a video frame: detection, alignment, quality, embedding,
tracking (one face, one track), the frame and face signals (AI-image probe, watermark, on-screen text,
face forensics), the character path and declared provenance (C2PA, GB 45438 labels, IPTC/XMP).

The result is an `Observation` like a video's, so `Scanner.decide` decides an image exactly as it
decides a video. JPEG, PNG and WebP are read by Pillow; HEIC/HEIF by pillow-heif and AVIF by
pillow-avif-plugin (both register with Pillow when imported).
"""
from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pillow_avif  # noqa: F401  (registers AVIF with Pillow)
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from pipeline.config import SamplingConfig
from pipeline.faces.tracking import FaceTracker
from pipeline.provenance.reader import read_provenance
from pipeline.scan import CharacterSamples, Observation, Scanner, _Stopwatch
from pipeline.types import Frame, VideoInfo
from pipeline.video import DecodeStats, VideoInputError

register_heif_opener()

MediaKind = Literal["image", "video"]
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def image_format(head: bytes) -> str | None:
    """The still-image format a file's first bytes say it is (None: not a still image)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIF_BRANDS:
            return "heic"
    return None


def media_kind(path: Path) -> MediaKind:
    """Image or video, by content (a name's suffix can lie); anything else is left to the video probe,
    which refuses it with its reason."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(16)
    return "image" if image_format(head) is not None else "video"


def load_image(path: Path, config: SamplingConfig) -> tuple[VideoInfo, np.ndarray]:
    """Decode one still image upright (EXIF orientation applied) as BGR, refusing bombs and bad files."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise VideoInputError(f"{path}: empty file (0 bytes)")
    with open(path, "rb") as f:
        kind = image_format(f.read(16))
    if kind is None:
        raise VideoInputError(f"{path}: not a JPEG, PNG, WebP, HEIC or AVIF image")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > config.max_pixels:
                raise VideoInputError(f"{path}: image size {width}x{height} exceeds the supported maximum of "
                                      f"{config.max_pixels} pixels")
            upright = (ImageOps.exif_transpose(opened) or opened).convert("RGB")
            rgb = np.asarray(upright)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise VideoInputError(f"{path}: {kind} image cannot be decoded ({' '.join(str(exc).split())[:200]})") \
            from exc
    image = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    info = VideoInfo(path=path, duration_s=0.0, fps=0.0, width=image.shape[1], height=image.shape[0], rotation=0,
                     codec=kind, frame_count=1, has_audio=False)
    return info, image


def observe_image(scanner: Scanner, path: Path, loaded: tuple[VideoInfo, np.ndarray] | None = None) -> Observation:
    """Observe a still as a one-frame video: the scanner's own face stage, tracker, frame collector,
    synthetic analyzer and character matcher, so an image is judged by the models a frame is.
    `loaded`: the caller's `load_image(path)`, not repeated."""
    watch = _Stopwatch()
    started = time.perf_counter()
    info, image = loaded if loaded is not None else load_image(path, scanner.config.sampling)
    watch.add("probe", started)
    started = time.perf_counter()
    provenance = read_provenance(info.path)
    watch.add("provenance", started)
    frame = Frame(index=0, t_s=0.0, image=image, reason="image", keyframe=True)
    tracker = FaceTracker(scanner.config.tracking)
    dropped: Counter[str] = Counter()
    faces = scanner._faces(frame, watch, dropped, tracker)
    for face in faces:
        if face.quality.reason is not None:
            dropped[face.quality.reason.split(" (")[0]] += 1
    tracker.update(faces, frame.t_s)
    frames = scanner.synthetic.frame_sampler(info, scanner.config.sampling.interval_s)
    frames.offer(frame, faces)
    characters = scanner.characters.start() if scanner.characters is not None else None
    if characters is not None:
        characters.offer(frame, faces)
    tracks = tracker.finish()
    started = time.perf_counter()
    synthetic = scanner.synthetic.analyze(info, provenance, frames, tracks)
    watch.add("synthetic", started)
    samples = None
    if characters is not None:
        started = time.perf_counter()
        samples = CharacterSamples(characters.finish(), characters.frames_embedded)
        watch.add("characters", started)
    stats = DecodeStats(decoded=1, sampled=1)
    return Observation(info=info, provenance=provenance, tracks=tracks, synthetic=synthetic, decode=stats,
                       dropped_faces=dict(dropped), timings_ms=dict(watch.ms), warnings=[], characters=samples)
