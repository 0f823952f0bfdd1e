"""Malformed and extreme media for error paths: text named .mp4, truncated and empty files,
audio without video, frames beyond the H.264 level limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import av
import numpy as np

from samples.clips import Scene, encode_video


def write_text_as_mp4(path: Path) -> Path:
    """A text file with a video name: the probe must reject it, not crash."""
    Path(path).write_text("This is not a video, only text with an .mp4 name.\n" * 64)
    return Path(path)


def write_truncated_mp4(path: Path, src: Path, box: Literal["mdat", "moov"] = "mdat") -> Path:
    """``src`` cut halfway through its top-level ``box``, like an interrupted upload.

    Cut in mdat with moov last (encode_video's default) both lose the index; with a faststart
    source the index survives and the frames before the cut still decode. Cut in moov the
    index is broken: depending on where, opening fails or the file opens with no decodable frame.
    """
    data = Path(src).read_bytes()
    offset, box_size = _top_level_box(data, box.encode())
    Path(path).write_bytes(data[: offset + box_size // 2])
    return Path(path)


def write_zero_byte(path: Path) -> Path:
    """An empty file, as left by an upload that sent nothing."""
    Path(path).write_bytes(b"")
    return Path(path)


def write_audio_only(path: Path, duration_s: float = 2.0, codec: Literal["aac", "pcm_s16le"] = "aac") -> Path:
    """An MP4/M4A holding a 440 Hz sine and no video stream: a valid file with nothing to scan."""
    rate, hz = 48_000, 440.0
    samples = np.sin(2 * np.pi * hz * np.arange(int(rate * duration_s)) / rate) * 0.3
    fmt = "fltp" if codec == "aac" else "s16"
    data = samples.astype(np.float32) if codec == "aac" else (samples * 32767).astype(np.int16)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        step = 1024
        for start in range(0, len(data), step):
            frame = av.AudioFrame.from_ndarray(data[None, start : start + step], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


def write_huge_frame_video(
    path: Path, image: np.ndarray | None = None, size: tuple[int, int] = (8192, 4608), frames: int = 2, fps: int = 25
) -> Path:
    """A few frames of a very large picture (default 8192x4608, beyond H.264 level 6.2's frame
    size limit, which x264 only warns about): the decoder copes, the scan must bound its memory."""
    width, height = size
    if image is None:
        image = _gradient(width // 8, height // 8)
    scene = Scene(image, frames / fps)
    return encode_video(path, [scene], size=size, fps=fps, preset="ultrafast")


def _top_level_box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, size) of the first top-level ISO-BMFF box of type ``kind``."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if data[offset + 4 : offset + 8] == kind:
            return offset, size
        offset += size
    raise ValueError(f"no top-level {kind.decode()} box")


def _gradient(width: int, height: int) -> np.ndarray:
    """A smooth colour ramp: compresses to almost nothing even at 8K."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return np.dstack([x, y, 255 - x]).astype(np.uint8)
