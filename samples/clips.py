"""H.264 clips built from photos with PyAV: the demo's sample media, and the tests' and benchmarks'.

A video is a list of ``Scene``s shown one after another; each scene frames a photo (or a crop
box in it, e.g. one face) and may pan or zoom, so faces move and change size over time the way
they do in real footage. Sizes are *display* sizes: with ``rotation`` the pixels are stored
turned and a display matrix tells players (and PyAV's ``VideoFrame.rotation``) how to turn them
back upright, as phones do with portrait clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

import av
import cv2
import numpy as np

Motion = Literal["static", "pan", "zoom_in", "zoom_out"]


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


ZOOM_END = 0.6  # a zoom ends (or starts) on a window this fraction of the scene's framing


PAN_WIDTH = 0.8  # a pan moves a window this fraction of the framing from its left to its right edge


VFR_STEPS = (2, 6, 4, 3, 5)  # variable-rate frame intervals in quarter frames: mean exactly 1/fps


@dataclass(frozen=True, eq=False)
class Scene:
    """One shot: ``image`` (BGR uint8) framed by ``crop`` (whole image if None) for ``duration_s``."""

    image: np.ndarray
    duration_s: float
    motion: Motion = "static"
    crop: Box | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"image must be BGR uint8 HxWx3, got {self.image.dtype} {self.image.shape}")
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        if self.motion not in get_args(Motion):
            raise ValueError(f"motion must be one of {get_args(Motion)}, got {self.motion!r}")


def scene_times(scenes: list[Scene]) -> list[tuple[float, float]]:
    """[start, end) of each scene in seconds; a frame at time t shows the scene whose span holds t."""
    spans, start = [], 0.0
    for scene in scenes:
        spans.append((start, start + scene.duration_s))
        start += scene.duration_s
    return spans


def frame_at(scenes: list[Scene], t: float, size: tuple[int, int]) -> np.ndarray:
    """The upright BGR picture shown at time ``t`` (what a decoder should show after rotation)."""
    spans = scene_times(scenes)
    index = next((i for i, (_, end) in enumerate(spans) if t < end), len(scenes) - 1)
    start, end = spans[index]
    return _render(scenes[index], min(max((t - start) / (end - start), 0.0), 1.0), size)


def reported_rotation(rotation: int) -> int:
    """What PyAV's ``VideoFrame.rotation`` reads back for a written ``rotation``.

    Its range is [-180, 180), so 180 reads back as -180 and 270 as -90.
    """
    return (rotation + 180) % 360 - 180


def encode_video(
    path: Path,
    scenes: list[Scene],
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    crf: int = 23,
    rotation: int | None = None,
    gop: int | None = None,
    vfr: bool = False,
    faststart: bool = False,
    preset: str = "veryfast",
) -> Path:
    """Encode ``scenes`` as H.264 yuv420p MP4 with ``size`` = upright (display) (width, height).

    ``rotation``: counter-clockwise degrees (multiple of 90) a player must turn the stored
    picture to show it upright, written as the stream's display matrix; the stored picture is
    the upright one turned the other way (so 90/-90/270 store a portrait clip as landscape).
    A phone's legacy ``rotate=90`` tag (clockwise) is ``rotation=-90`` here.
    ``gop``: exact keyframe interval in frames (scene-cut keyframes off); default is x264's.
    ``vfr``: irregular frame intervals (1/2 to 3/2 of 1/fps, mean 1/fps) instead of constant.
    ``faststart``: moov before mdat, so a file truncated in its mdat still partly decodes.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even width and height, got {size}")
    turns = _quarter_turns(rotation or 0)
    stored = (height, width) if turns % 2 else (width, height)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = _add_h264_stream(container, stored, fps, crf, gop, preset, vfr)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for pts, t in _frame_times(sum(s.duration_s for s in scenes), fps, vfr):
            picture = np.ascontiguousarray(np.rot90(frame_at(scenes, t, size), k=-turns))
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


def transcode(source: Path, target: Path, codec: str, pix_fmt: str = "yuv420p",
              options: dict[str, str] | None = None) -> Path:
    """Re-encode every frame of ``source`` with encoder ``codec`` into ``target`` (its container from
    the suffix: .mp4, .webm, .mkv, .avi), as a platform or a phone would store the same video."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video = src.streams.video[0]
        stream = out.add_stream(codec, rate=video.average_rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = video.codec_context.width, video.codec_context.height, pix_fmt
        for index, decoded in enumerate(src.decode(video)):  # fresh frames: encoders refuse the decoder's own
            frame = av.VideoFrame.from_ndarray(decoded.to_ndarray(format="bgr24"), format="bgr24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return Path(target)


def _add_h264_stream(
    container: av.container.OutputContainer,
    stored: tuple[int, int],
    fps: int,
    crf: int,
    gop: int | None,
    preset: str,
    vfr: bool,
) -> av.video.stream.VideoStream:
    """A libx264 yuv420p stream; pts count frames, or quarter frames when ``vfr``."""
    options = {"crf": str(crf), "preset": preset}
    if gop is not None:
        options["sc_threshold"] = "0"
    stream = container.add_stream("libx264", rate=fps, options=options)
    stream.width, stream.height = stored
    stream.pix_fmt = "yuv420p"
    if vfr:
        stream.codec_context.time_base = Fraction(1, 4 * fps)
    if gop is not None:
        stream.codec_context.gop_size = gop
    return stream


def _frame_times(total_s: float, fps: int, vfr: bool) -> list[tuple[int, float]]:
    """(pts, seconds) of every frame starting before ``total_s``."""
    if not vfr:
        count = math.ceil(total_s * fps - 1e-9)
        return [(i, i / fps) for i in range(count)]
    times, pts, i = [], 0, 0
    while pts / (4 * fps) < total_s - 1e-9:
        times.append((pts, pts / (4 * fps)))
        pts += VFR_STEPS[i % len(VFR_STEPS)]
        i += 1
    return times


def _quarter_turns(rotation: int) -> int:
    """``rotation`` in counter-clockwise quarter turns, 0..3."""
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    return (rotation // 90) % 4


def _render(scene: Scene, progress: float, size: tuple[int, int]) -> np.ndarray:
    """The scene's picture at ``progress`` (0..1): its moving window scaled to ``size``, black outside the photo."""
    width, height = size
    image, (cx, cy, window_w) = _prescaled(scene, size)
    cx, cy, window_w = _move(cx, cy, window_w, scene.motion, progress)
    scale = width / window_w
    left, top = cx - window_w / 2, cy - window_w * height / width / 2
    matrix = np.float32([[scale, 0, -left * scale], [0, scale, -top * scale]])
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def _prescaled(scene: Scene, size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The image shrunk (area filter) so its framing is at most ``size``, and that framing as
    (centre x, centre y, width): warping then never decimates, which would alias the faces."""
    width, height = size
    img_h, img_w = scene.image.shape[:2]
    x0, y0, x1, y1 = scene.crop or (0, 0, img_w, img_h)
    box_w, box_h = max(x1 - x0, 1), max(y1 - y0, 1)
    window_w = max(box_w, box_h * width / height)  # widen or heighten the box to the frame's aspect
    factor = min(1.0, width / window_w)
    image = scene.image
    if factor < 1.0:
        new_size = (max(1, round(img_w * factor)), max(1, round(img_h * factor)))
        image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
        factor = new_size[0] / img_w
    return image, ((x0 + x1) / 2 * factor, (y0 + y1) / 2 * factor, window_w * factor)


def _move(cx: float, cy: float, window_w: float, motion: Motion, progress: float) -> tuple[float, float, float]:
    """The window (centre x, centre y, width) at ``progress`` of a scene with ``motion``."""
    if motion == "zoom_in":
        return cx, cy, window_w * (1 - (1 - ZOOM_END) * progress)
    if motion == "zoom_out":
        return cx, cy, window_w * (ZOOM_END + (1 - ZOOM_END) * progress)
    if motion == "pan":
        travel = window_w * (1 - PAN_WIDTH)
        return cx - travel / 2 + travel * progress, cy, window_w * PAN_WIDTH
    return cx, cy, window_w
