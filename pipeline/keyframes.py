"""The keyframe-first pass: where a video's keyframes lie close together (phone recordings: one a
second), its coarse samples are taken from keyframes alone, decoded with every other frame skipped,
and the frames between two keyframes are decoded only when the scan asks for them (`between`).

A keyframe decodes the same whether or not the frames around it are decoded (it refers to none), so
the coarse samples are the frames a full decode would give; what is saved is decoding the predicted
frames of every stretch whose faces did not change.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from pipeline.config import SamplingConfig
from pipeline.types import Frame, VideoInfo
from pipeline.video import (DecodeStats, bgr_on_read, frames_in, luma_grid, open_video, sample_frames,
                            seek_before, stream_origin)

GAP_SLACK = 1.25  # a keyframe gap up to this many coarse intervals still counts as short (phones: 1.00-1.15 s)
# A predicted frame this many times the median size of the 8 predicted frames before it is mostly
# intra-coded: the first frame after a cut the encoder put no keyframe on. Measured: 208-258x at such
# cuts (x264, scene cuts off), 40-42x where real footage jumps (a loop's restart); on 16 real clips
# the largest otherwise is 55x (a screen recording's first second), most stay under 10x. A frame taken
# for a cut wrongly costs the decode of one stretch between keyframes; one missed is the risk this
# guards against (a cutaway between keyframes that show the same faces).
CUT_PACKET_RATIO = 20.0
RECENT_PACKETS = 8
# Decoders that honour skip_frame=NONKEY (measured on a clip with a keyframe a second: H.264 and HEVC
# decoded 37 of 225 frames, MPEG-4 Part 2 31 of 237). FFmpeg's VP9 decoder gave every frame anyway and
# dav1d most of them (93 of 117), so for those the pass would only add the stretches' decodes.
SKIPS_TO_KEYFRAMES = frozenset({"h264", "hevc", "mpeg4"})


@dataclass(frozen=True)
class GopLayout:
    """Where the keyframes of a stream (or of a stretch of it) lie, in seconds from its start, read from
    packet flags without decoding; `packets` counts the video packets read, `last_t_s` is the latest
    one's time; `complete`: False when reading stopped at a gap between keyframes already too long."""

    keyframes: tuple[float, ...]
    packets: int
    last_t_s: float
    cut_like: tuple[float, ...] = ()  # times of predicted frames CUT_PACKET_RATIO x those before them
    complete: bool = True

    def cut_between(self, after_s: float, until_s: float) -> bool:
        """Whether a cut-like predicted frame lies strictly between two samples."""
        return any(after_s + 1e-6 < t < until_s - 1e-6 for t in self.cut_like)

    def short(self, coarse_interval_s: float, start_s: float, end_s: float) -> bool:
        """Whether coarse samples can be keyframes alone: one within `GAP_SLACK` coarse intervals of the
        segment's start, of each other and of its end, and not every frame a keyframe (an intra-only
        stream saves nothing by skipping)."""
        if not self.complete or coarse_interval_s <= 0 or not self.keyframes or len(self.keyframes) * 2 > self.packets:
            return False
        longest = coarse_interval_s * GAP_SLACK
        inside = [t for t in self.keyframes if start_s - 1e-6 <= t < end_s]
        if not inside:
            return False
        edges = [start_s, *inside, min(end_s, self.last_t_s)]
        return float(np.max(np.diff(edges))) <= longest


class KeyframeFirst:
    """The keyframe-first pass of one observation: its samples, the stretches between them decoded when
    the scan asks, and what that decoding adds to the observation's counts."""

    def __init__(self, info: VideoInfo, config: SamplingConfig, layout: GopLayout, start_s: float,
                 end_s: float | None):
        self.info, self.config, self.layout = info, config, layout
        self.start_s, self.end_s = start_s, end_s
        self.last: Frame | None = None  # the latest keyframe sample analysed
        self._decoded = DecodeStats()   # the stretches', counted on the scan's thread

    @classmethod
    def plan(cls, info: VideoInfo, config: SamplingConfig, start_s: float, end_s: float | None) -> KeyframeFirst | None:
        """The pass when the video's coarse samples can be keyframes decoded alone: its decoder skips to
        keyframes (`SKIPS_TO_KEYFRAMES`) and they lie close enough (`GopLayout.short`); else None."""
        if not config.keyframe_first or info.codec not in SKIPS_TO_KEYFRAMES:
            return None
        layout = gop_layout(info, start_s, end_s, give_up_gap_s=config.coarse_interval_s * GAP_SLACK)
        if not layout.short(config.coarse_interval_s, start_s, end_s if end_s is not None else info.duration_s):
            return None
        return cls(info, config, layout, start_s, end_s)

    def samples(self, stats: DecodeStats) -> Iterator[Frame]:
        return keyframe_samples(self.info, self.config, stats, self.start_s, self.end_s)

    def cut_unseen(self, frame: Frame | None) -> bool:
        """Whether a cut-like frame lies between the last keyframe sample and `frame`."""
        return frame is not None and self.last is not None and self.layout.cut_between(self.last.t_s, frame.t_s)

    def between(self, until: Frame | None) -> list[Frame]:
        """The samples between the last keyframe sample and `until` (None: the end), decoded now; `until`
        becomes a cut when one falls on it."""
        if self.last is None:
            return []
        held, cut = between(self.info, self.config, self._decoded, self.last.t_s, until.t_s if until else None)
        if until is not None and cut is not None:
            until.reason = cut
        return held

    def finish(self, stats: DecodeStats) -> None:
        """Add the stretches' decoding to `stats`, and the stream's end as its packets show it: the last
        keyframe may lie up to `GAP_SLACK` coarse intervals before the end."""
        stats.add(self._decoded)
        end = self.end_s if self.end_s is not None else float("inf")
        stats.last_t_s = max(stats.last_t_s, min(self.layout.last_t_s, end))
        stats.keyframe_first = True


def gop_layout(info: VideoInfo, start_s: float = 0.0, end_s: float | None = None,
               give_up_gap_s: float | None = None) -> GopLayout:
    """Read the flags, sizes and times of the video packets from `start_s` to `end_s` (no decoding: tens
    of milliseconds a minute of 1080p; a segment reads only its own stretch). With `give_up_gap_s`,
    reading stops at the first packet that far past the latest keyframe (or the start): the keyframes
    are already too far apart, and a video with keyframes 10 s apart costs a few packets' reading."""
    container = open_video(info.path)
    try:
        stream = container.streams.video[0]
        base = stream.time_base
        assert base is not None, "probe() opened this stream: a decodable video stream has a time base"
        origin = stream_origin(stream)
        seek_before(container, stream, start_s)
        keyframes, cut_like, packets, last, complete = [], [], 0, 0.0, True
        latest_key = start_s
        recent: deque[int] = deque(maxlen=RECENT_PACKETS)  # sizes of the latest predicted frames
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                t = float(packet.pts * base) - origin
                if end_s is not None and t >= end_s + 1.0:  # reordered frames of the last group come a little late
                    break
                packets += 1
                last = max(last, t)
                if packet.is_keyframe:
                    keyframes.append(t)
                    latest_key = max(latest_key, t)
                    continue
                if give_up_gap_s is not None and t - latest_key > give_up_gap_s + 0.1:
                    complete = False
                    break
                if len(recent) >= RECENT_PACKETS // 2 and packet.size >= CUT_PACKET_RATIO * float(np.median(recent)):
                    cut_like.append(t)
                recent.append(packet.size)
        except av.error.FFmpegError:
            pass  # damaged data: the layout up to it; the scan's own decode reports the damage
        return GopLayout(tuple(sorted(keyframes)), packets, last, tuple(sorted(cut_like)), complete)
    finally:
        container.close()


def keyframe_samples(info: VideoInfo, config: SamplingConfig, stats: DecodeStats, start_s: float = 0.0,
                     end_s: float | None = None) -> Iterator[Frame]:
    """The keyframes on the coarse grid (the first at or after each `coarse_interval_s` step), decoded
    with every other frame skipped; each is a sample of reason "keyframe"."""
    container = open_video(info.path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = config.decode_threads
        stream.codec_context.skip_frame = "NONKEY"
        seek_before(container, stream, start_s)
        next_target = start_s
        try:
            for frame, t in frames_in(container, stream, stats, start_s, end_s):
                if not frame.key_frame or t < next_target - 1e-6:  # a decoder may ignore skip_frame
                    continue
                while next_target <= t + 1e-6:
                    next_target += config.coarse_interval_s
                stats.sampled += 1
                grid, _ = luma_grid(frame)
                yield Frame(index=stats.decoded - 1, t_s=round(t, 4), reason="keyframe", keyframe=True,
                            convert=bgr_on_read(frame), luma=grid)
        except av.error.FFmpegError as exc:
            stats.stopped_on(exc)
    finally:
        container.close()


def between(info: VideoInfo, config: SamplingConfig, stats: DecodeStats, after_s: float,
            until_s: float | None) -> tuple[list[Frame], str | None]:
    """The samples strictly between a keyframe sample at `after_s` and the one at `until_s` (None: the
    end of the video), every `interval_s` and the first frame after each cut, decoded from `after_s`'s
    keyframe; and whether the sampler saw a cut on the frame at `until_s` ("scene_cut", else None).
    Their decoding counts in `stats`."""
    own = DecodeStats()
    held: list[Frame] = []
    cut_at_until = None
    end = until_s + 1e-3 if until_s is not None else None
    for frame in sample_frames(info, config, own, start_s=after_s, end_s=end):
        if until_s is not None and frame.t_s >= until_s - 1e-6:
            cut_at_until = "scene_cut" if frame.reason == "scene_cut" else None
        elif frame.t_s > after_s + 1e-6:
            held.append(frame)
    own.sampled = len(held)
    stats.add(own)
    return held, cut_at_until
