"""Video probing and frame sampling with PyAV: decode only what the sampling needs.

Frames come out upright (display-matrix rotation applied) with timestamps in seconds from the
stream's own clock, so variable frame rate needs no special case.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.config import SamplingConfig
from pipeline.types import Frame, VideoInfo

_THUMB_W, _THUMB_H = 64, 36
_CUT_CHECK_EVERY = 3  # decoded frames between scene-cut checks: cuts found within 3 frames


class VideoInputError(ValueError):
    """The file can never be scanned as it is; the message says why in one line."""


def open_video(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoInputError(f"{path}: no such file")
    if path.is_dir():
        raise VideoInputError(f"{path}: is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoInputError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoInputError(f"{path}: not a readable video container ({_short(exc)})") from exc


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded picture the way the display matrix says (counter-clockwise degrees)."""
    turns = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """The picture shrunk (area-averaged) so its long side is at most `max_side`; never enlarged."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def probe(path: Path, config: SamplingConfig) -> VideoInfo:
    """Read container facts and decode the first frame, so broken input fails before any work."""
    path = Path(path)
    container = open_video(path)
    try:
        if not container.streams.video:
            kinds: list[str] = sorted({s.type for s in container.streams}) or ["no"]
            raise VideoInputError(f"{path}: no video stream (has {', '.join(kinds)} streams only)")
        stream = container.streams.video[0]
        if stream.codec_context is None:   # a codec tag FFmpeg does not know: no decoder to open
            raise VideoInputError(f"{path}: video stream's codec is unknown to this FFmpeg build; cannot decode")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > config.max_pixels:
            raise VideoInputError(
                f"{path}: frame size {width}x{height} exceeds the supported maximum of "
                f"{config.max_pixels} pixels")
        first = _first_frame(container, stream, path)
        rotation = int(first.rotation or 0)
        if rotation % 180:
            width, height = height, width
        duration = _duration(container, stream)
        if duration > config.max_duration_s:
            raise VideoInputError(
                f"{path}: duration {duration:.0f} s exceeds the supported maximum of {config.max_duration_s:.0f} s")
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        return VideoInfo(path=path, duration_s=duration, fps=fps, width=width, height=height,
                         rotation=rotation, codec=stream.codec_context.codec.canonical_name,  # "av1", not "libdav1d"
                         frame_count=int(stream.frames or 0),
                         has_audio=bool(container.streams.audio))
    finally:
        container.close()


def _first_frame(container, stream, path: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoInputError(f"{path}: video stream cannot be decoded ({_short(exc)})") from exc
    raise VideoInputError(f"{path}: video stream holds no decodable frame (truncated or empty)")


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


@dataclass
class DecodeStats:
    """What sampling cost, for timings and benchmarks."""

    decoded: int = 0
    sampled: int = 0
    scene_cuts: int = 0
    last_t_s: float = 0.0
    skipped: int = 0  # sampled frames not analysed: the faces were the same before and after them
    unchanged: int = 0  # coarse samples not run through the detector: the picture had not changed
    keyframe_first: bool = False  # coarse samples were keyframes decoded alone (pipeline/keyframes.py)
    corrupt_tail: str | None = None  # set when decoding stopped early on damaged data

    def add(self, other: DecodeStats) -> None:
        """Count another decode of the same video: keyframe-first's stretches decoded between keyframes, or
        another segment of a segmented scan. The first damage reported stays."""
        self.decoded += other.decoded
        self.sampled += other.sampled
        self.scene_cuts += other.scene_cuts
        self.skipped += other.skipped
        self.unchanged += other.unchanged
        self.last_t_s = max(self.last_t_s, other.last_t_s)
        self.keyframe_first = self.keyframe_first or other.keyframe_first
        self.corrupt_tail = self.corrupt_tail or other.corrupt_tail

    def stopped_on(self, exc: av.error.FFmpegError) -> None:
        self.corrupt_tail = f"decoding stopped at {self.last_t_s:.2f} s on damaged data ({_short(exc)})"


_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def luma_grid(frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
    """Every n-th luma value of the stored picture, down to about 256x144 (4x the thumbnail), and whether
    it is full range. Read straight from the 8-bit luma plane where there is one: 0.13 instead of
    0.6-0.7 ms a 1080p frame for swscale's grey thumbnail, taken every third decoded frame."""
    if frame.format.name not in _LUMA_FIRST:
        grey = frame.reformat(width=4 * _THUMB_W, height=4 * _THUMB_H, format="gray").to_ndarray()
        return np.ascontiguousarray(grey), True
    plane = frame.planes[0]
    luma = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
    step_y, step_x = max(1, plane.height // (4 * _THUMB_H)), max(1, plane.width // (4 * _THUMB_W))
    full = frame.format.name.startswith("yuvj") or frame.format.name == "gray" or frame.color_range == _FULL_RANGE
    return np.ascontiguousarray(luma[::step_y, ::step_x]), full


_SMOOTH = np.array([0.25, 0.5, 0.25], np.float32)


def _thumb(grid: np.ndarray, full_range: bool) -> np.ndarray:
    """The 64x36 grey thumbnail (0..1) of the cut test: the luma grid area-averaged, then smoothed by
    [1 2 1]/4 as swscale's bilinear downscale (which the cut threshold was measured on) smooths; video-range
    luma stretched to full range as swscale's grey does. Without the smoothing a fast pan over a 4K photo
    crossed the threshold 71 times instead of 9; with it, on 6 benchmark uploads and 16 real clips, the
    same frame pairs cross it as with swscale's thumbnail."""
    area = cv2.resize(grid, (_THUMB_W, _THUMB_H), interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.sepFilter2D(area, -1, _SMOOTH, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    return small / 255.0 if full_range else np.clip((small - 16.0) / 219.0, 0.0, 1.0)


def unchanged(before: np.ndarray | None, after: np.ndarray | None, max_step: int) -> bool:
    """Whether two samples' luma grids (`Frame.luma`) show the same picture: no grid point moved by more
    than `max_step` levels. A face needs about 25 grid points even at 36 px in 1080p; compression noise on
    a still picture moves none, real footage of people usually thousands (docs/scanning.md)."""
    if before is None or after is None or before.shape != after.shape or max_step <= 0:
        return False
    return int(np.abs(before.astype(np.int16) - after.astype(np.int16)).max()) <= max_step


def sample_frames(info: VideoInfo, config: SamplingConfig, stats: DecodeStats | None = None,
                  start_s: float = 0.0, end_s: float | None = None) -> Iterator[Frame]:
    """Yield upright BGR frames every `interval_s` seconds, the first frame after each cut, and
    keyframes at least half an interval from the last sample.

    Non-reference frames are skipped by the decoder when configured (the nearest decoded frame
    stands in for a skipped target). `start_s`/`end_s` restrict sampling to a segment; decoding
    starts from the keyframe before `start_s`.
    """
    stats = stats if stats is not None else DecodeStats()
    container = open_video(info.path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = config.decode_threads
        if config.skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        if config.skip_loop_filter:
            stream.codec_context.options = {"skip_loop_filter": "all"}
        seek_before(container, stream, start_s)
        yield from _select(container, stream, info, config, stats, start_s, end_s)
    finally:
        container.close()


def seek_before(container, stream, start_s: float) -> None:
    """Move to the keyframe at or before `start_s` (nothing to do from the start)."""
    if start_s > 0:
        time_base = stream.time_base
        assert time_base is not None, "probe() opened this stream: a decodable video stream has a time base"
        container.seek(int(start_s / time_base), stream=stream, backward=True, any_frame=False)


def stream_origin(stream) -> float:
    """The stream's first timestamp in seconds: times are counted from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def bgr_on_read(frame: av.VideoFrame) -> Callable[[], np.ndarray]:
    return lambda: upright(frame.to_ndarray(format="bgr24"), int(frame.rotation or 0))


def _is_cut(thumb: np.ndarray, previous: np.ndarray | None, config: SamplingConfig) -> bool:
    return previous is not None and float(np.abs(thumb - previous).mean()) >= config.scene_cut_threshold


def frames_in(container, stream, stats: DecodeStats, start_s: float,
              end_s: float | None) -> Iterator[tuple[av.VideoFrame, float]]:
    """The stream's decoded frames from `start_s` until `end_s`, each with its time in seconds from the
    stream's start, counted in `stats` (frames before `start_s` come from the keyframe a seek landed on)."""
    origin = stream_origin(stream)
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        t = float(frame.pts * stream.time_base) - origin
        if t < start_s - 1e-6:
            continue
        if end_s is not None and t >= end_s:
            break
        stats.decoded += 1
        stats.last_t_s = t
        yield frame, t


def _select(container, stream, info: VideoInfo, config: SamplingConfig, stats: DecodeStats,
            start_s: float, end_s: float | None) -> Iterator[Frame]:
    next_target = start_s
    last_sample_t = -float("inf")
    previous_thumb: np.ndarray | None = None
    since_check = 0
    try:
        for frame, t in frames_in(container, stream, stats, start_s, end_s):
            reason = None
            if t >= next_target - 1e-6:
                reason = "interval"
            elif frame.key_frame and t >= last_sample_t + config.interval_s / 2:
                reason = "keyframe"  # cheap to take (decoded anyway) and the best frame for watermarks
            elif config.scene_cuts and since_check + 1 >= _CUT_CHECK_EVERY:
                grid, full_range = luma_grid(frame)
                thumb = _thumb(grid, full_range)
                if _is_cut(thumb, previous_thumb, config):
                    reason = "scene_cut"
                    stats.scene_cuts += 1
                previous_thumb, since_check = thumb, 0
            else:
                since_check += 1
            if reason is None:
                continue
            if reason != "scene_cut":  # a cut's sample has its grid from the cut test
                grid, full_range = luma_grid(frame)
                if config.scene_cuts:  # a cut often falls on an interval or key frame
                    thumb = _thumb(grid, full_range)
                    if _is_cut(thumb, previous_thumb, config):
                        reason = "scene_cut"
                        stats.scene_cuts += 1
                    previous_thumb, since_check = thumb, 0
            while next_target <= t + 1e-6:
                next_target += config.interval_s
            stats.sampled += 1
            last_sample_t = t
            yield Frame(index=stats.decoded - 1, t_s=round(t, 4), reason=reason, keyframe=bool(frame.key_frame),
                        convert=bgr_on_read(frame), luma=grid)
    except av.error.FFmpegError as exc:
        stats.stopped_on(exc)
