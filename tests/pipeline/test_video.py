"""Probing and sampling on real H.264 files: timing, rotation, VFR, cuts, and broken input."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import SamplingConfig
from pipeline.video import DecodeStats, VideoInputError, probe, sample_frames
from samples.broken import (write_audio_only, write_huge_frame_video, write_text_as_mp4, write_truncated_mp4,
                            write_zero_byte)
from samples.clips import Scene, encode_video, frame_at
from tests.conftest import make_runtime


@pytest.fixture(scope="module")
def scenes(photo):
    return [Scene(photo("gdp.jpg"), 2.0, "pan"), Scene(photo("yaoming.jpg"), 2.0, "zoom_in"),
            Scene(photo("players.jpg"), 2.0, "static")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, scenes):
    return encode_video(tmp_path_factory.mktemp("v") / "clip.mp4", scenes, size=(480, 270), fps=25, gop=250)


def test_probe_reports_the_stream(clip):
    info = probe(clip, SamplingConfig())
    assert (info.width, info.height, info.rotation, info.codec) == (480, 270, 0, "h264")
    assert info.duration_s == pytest.approx(6.0, abs=0.1)
    assert info.fps == pytest.approx(25.0)


def test_samples_every_interval_and_decodes_less(clip):
    config = SamplingConfig(interval_s=0.5, scene_cuts=False)
    stats = DecodeStats()
    frames = list(sample_frames(probe(clip, config), config, stats))
    times = np.array([f.t_s for f in frames])
    assert len(frames) == pytest.approx(12, abs=1)
    assert np.all(np.diff(times) > 0) and np.all(np.diff(times) <= 0.5 + 2 / 25 + 1e-6)
    assert stats.decoded < 150 * 0.9, "non-reference frames are skipped"


def test_scene_cuts_are_sampled_between_intervals(clip, scenes):
    config = SamplingConfig(interval_s=5.0, scene_cuts=True)
    frames = list(sample_frames(probe(clip, config), config))
    cut_times = [f.t_s for f in frames if f.reason == "scene_cut"]
    for boundary in (2.0, 4.0):
        assert any(boundary <= t <= boundary + 0.2 for t in cut_times), (boundary, cut_times)


def test_a_cut_on_an_interval_or_key_frame_is_reported_as_a_cut(tmp_path, scenes):
    """Cuts at 2 s and 4 s fall on interval samples (every 2 s), and x264 puts a keyframe on each: the
    samples there still say scene_cut, since the tracker links faces across a cut by embedding alone."""
    path = encode_video(tmp_path / "cuts.mp4", scenes, size=(480, 270), fps=25)
    config = SamplingConfig(interval_s=2.0, scene_cuts=True)
    stats = DecodeStats()
    frames = list(sample_frames(probe(path, config), config, stats))
    cuts = [f.t_s for f in frames if f.reason == "scene_cut"]
    assert len(cuts) == stats.scene_cuts == 2 and all(b <= t <= b + 0.2 for b, t in zip((2.0, 4.0), cuts)), cuts
    assert frames[0].reason == "interval"


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_phone_clip_comes_out_upright(tmp_path, scenes, rotation):
    path = encode_video(tmp_path / "portrait.mp4", scenes[1:2], size=(270, 480), fps=25, rotation=rotation)
    config = SamplingConfig(interval_s=1.0)
    info = probe(path, config)
    assert (info.width, info.height) == (270, 480)
    frame = next(sample_frames(info, config))
    assert frame.image.shape == (480, 270, 3)
    expected = frame_at(scenes[1:2], frame.t_s, (270, 480))
    assert np.abs(frame.image.astype(float) - expected).mean() < 8


def test_variable_frame_rate_keeps_stream_timestamps(tmp_path, scenes):
    path = encode_video(tmp_path / "vfr.mp4", scenes[:1], size=(320, 180), fps=25, vfr=True)
    config = SamplingConfig(interval_s=0.25, scene_cuts=False, skip_nonref=False)
    times = [f.t_s for f in sample_frames(probe(path, config), config)]
    assert len(times) == 8
    for i, t in enumerate(times):  # the first frame at or after each grid point; VFR gaps are <= 1.5/fps
        assert i * 0.25 - 1e-6 <= t <= i * 0.25 + 1.5 / 25 + 1e-6, (i, t)


@pytest.mark.parametrize("make, words", [
    (lambda d, clip: write_text_as_mp4(d / "notes.mp4"), "not a readable video"),
    (lambda d, clip: write_zero_byte(d / "empty.mp4"), "empty file"),
    (lambda d, clip: write_audio_only(d / "song.m4a"), "no video stream"),
    (lambda d, clip: write_truncated_mp4(d / "cut.mp4", clip, "mdat"), "not a readable video"),
    (lambda d, clip: d / "missing.mp4", "no such file"),
    (lambda d, clip: write_huge_frame_video(d / "8k.mp4"), "exceeds the supported maximum"),
])
def test_bad_input_is_refused_with_a_reason(tmp_path, clip, make, words):
    path = make(tmp_path, clip)
    with pytest.raises(VideoInputError, match=words):
        probe(path, SamplingConfig())


def test_file_cut_inside_its_frame_data_is_refused_as_truncated(tmp_path, scenes, detector, embedder):
    """moov first (faststart): the file opens and decodes for a while, then the data ends."""
    whole = encode_video(tmp_path / "whole.mp4", scenes, size=(480, 270), fps=25, faststart=True)
    cut = write_truncated_mp4(tmp_path / "cut.mp4", whole, "mdat")
    runtime = make_runtime(tmp_path / "home", detector, embedder)
    with pytest.raises(VideoInputError, match="truncated or damaged"):
        runtime.scanner.scan(cut, None)
