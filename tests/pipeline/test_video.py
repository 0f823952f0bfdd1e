"""Probing and sampling on real H.264 files: timing, rotation, VFR, cuts, and broken input."""
from __future__ import annotations

import av
import numpy as np
import pytest

from pipeline.config import SamplingConfig
from pipeline.types import Frame
from pipeline.video import DecodeStats, VideoInputError, luma_grid, _thumb, probe, sample_frames, unchanged
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


def test_one_decoder_thread_samples_the_same_pictures(clip):
    """decode_threads=1 (a worker per core) changes how the decoder works, not what it gives."""
    samples = {}
    for threads in (0, 1):
        config = SamplingConfig(decode_threads=threads)
        samples[threads] = [(f.t_s, f.reason, f.image) for f in sample_frames(probe(clip, config), config)]
    assert [s[:2] for s in samples[0]] == [s[:2] for s in samples[1]] and len(samples[0]) >= 12
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(samples[0], samples[1]))


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


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_cut_thumbnails_from_the_luma_plane_match_swscales(tmp_path, scenes, pix_fmt):
    """The cut test reads its thumbnails straight from the luma plane; video- and full-range streams both
    come out as swscale's grey thumbnails do (the cut threshold was measured on those)."""
    path = tmp_path / f"{pix_fmt}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 480, 270, pix_fmt
        for t in np.arange(0, 6.0, 0.04):
            picture = av.VideoFrame.from_ndarray(frame_at(scenes, float(t), (480, 270)), format="bgr24")
            out.mux(stream.encode(picture.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    ours, swscale = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.format.name == pix_fmt
            ours.append(_thumb(*luma_grid(frame)))
            swscale.append(frame.reformat(width=64, height=36, format="gray").to_ndarray() / 255.0)
    assert abs(float(np.mean([np.mean(a - b) for a, b in zip(ours, swscale)]))) < 0.005, "the same grey levels"
    assert max(float(np.abs(a - b).mean()) for a, b in zip(ours, swscale)) < 0.05  # the cut threshold: 0.12
    steps = [(float(np.abs(a[1] - a[0]).mean()), float(np.abs(b[1] - b[0]).mean()))
             for a, b in zip(zip(ours, ours[3:]), zip(swscale, swscale[3:]))]
    assert [o >= 0.12 for o, _ in steps] == [s >= 0.12 for _, s in steps], "the same frame pairs are cuts"
    assert sum(s >= 0.12 for _, s in steps) >= 2


def test_an_unchanged_picture_is_told_from_a_small_change(clip):
    """Compression noise of a still shot moves no luma grid point by more than 24 levels; a patch the size
    of a small face (36 px in 1080p: 5x5 grid points) does."""
    config = SamplingConfig()
    grids = [f.luma for f in sample_frames(probe(clip, config), config)]
    still = [g for g in grids[-4:]]  # the clip ends on a static shot
    assert all(unchanged(a, b, 24) for a, b in zip(still, still[1:]))
    assert not unchanged(grids[0], grids[2], 24), "a pan moves the picture"
    changed = still[0].copy()
    changed[10:15, 20:25] = np.clip(changed[10:15, 20:25].astype(int) + 40, 0, 255)
    assert not unchanged(still[0], changed, 24)
    assert not unchanged(still[0], still[0], 0), "0 turns the test off"
    assert not unchanged(None, still[0], 24) and not unchanged(still[0], still[0][:-1], 24)


def test_a_sampled_frame_is_converted_once_and_only_when_read(clip):
    calls = []

    def convert():
        calls.append(1)
        return np.zeros((2, 2, 3), np.uint8)

    frame = Frame(0, 0.0, convert=convert)
    assert not calls
    assert frame.image is frame.image and len(calls) == 1
    with pytest.raises(ValueError):
        Frame(0, 0.0)
    with pytest.raises(ValueError):
        Frame(0, 0.0, np.zeros((2, 2, 3), np.uint8), convert=convert)
    config = SamplingConfig()
    first = next(iter(sample_frames(probe(clip, config), config)))
    assert first.image.shape == (270, 480, 3) and first.luma is not None
