"""Keyframe-first coarse samples: on a video with a keyframe a second (as phones record), the scan
decodes keyframes alone and the frames between two of them only where the faces change, and finds the
same people over the same spans as one decode of every reference frame."""
from __future__ import annotations

import json

import pytest

from pipeline.config import SamplingConfig, ScanConfig
from pipeline.keyframes import GopLayout, KeyframeFirst, gop_layout
from pipeline.provenance.reader import read_provenance
from pipeline.report import build_report
from pipeline.video import probe
from samples.clips import Scene, encode_video, transcode
from samples.photos import package_photo
from tests.conftest import make_runtime
from workers.scans import codec
from workers.scans.segments import merge_segments


def test_short_gops_are_told_from_long_and_intra_only_ones():
    phone = GopLayout(tuple(float(t) for t in range(10)), packets=300, last_t_s=9.97)
    assert phone.short(1.0, 0.0, 10.0)
    assert not phone.short(0.5, 0.0, 10.0), "keyframes 1 s apart are no 0.5 s coarse grid"
    assert phone.short(1.0, 3.0, 6.0), "a segment"
    broadcast = GopLayout((0.0, 8.0), packets=300, last_t_s=9.97)
    assert not broadcast.short(1.0, 0.0, 10.0)
    intra = GopLayout(tuple(t / 25 for t in range(250)), packets=250, last_t_s=9.96)
    assert not intra.short(1.0, 0.0, 10.0), "every frame a keyframe: skipping saves nothing"
    late_start = GopLayout((2.0, 3.0, 4.0), packets=120, last_t_s=4.5)
    assert not late_start.short(1.0, 0.0, 4.5)


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory, photo):
    """Yao Ming alone (zoom), then a cut at 4.6 s, between keyframes, to players.jpg (him among others,
    panned), then Grace Hopper: a keyframe every 25 frames (1 s), as a phone records, scene cuts off."""
    scenes = [Scene(photo("yaoming.jpg"), 4.6, "zoom_in"), Scene(photo("players.jpg"), 2.8, "pan"),
              Scene(photo("grace_hopper.jpg"), 2.6, "static")]
    return encode_video(tmp_path_factory.mktemp("kf") / "phone.mp4", scenes, size=(640, 360), fps=25, gop=25)


def test_the_layout_is_read_from_packets(phone_clip, tmp_path, photo):
    info = probe(phone_clip, SamplingConfig())
    layout = gop_layout(info)
    assert layout.keyframes[:3] == pytest.approx((0.0, 1.0, 2.0))
    assert layout.packets == 250 and layout.last_t_s == pytest.approx(9.96)
    assert layout.short(1.0, 0.0, 10.0)
    segment = gop_layout(info, 3.0, 6.0, give_up_gap_s=1.25)  # a segment reads only its own stretch
    assert segment.complete and segment.keyframes == pytest.approx((3.0, 4.0, 5.0, 6.0))
    assert segment.packets <= 4 * 25 and segment.short(1.0, 3.0, 6.0)
    long_groups = encode_video(tmp_path / "broadcast.mp4", [Scene(photo("gdp.jpg"), 8.0, "pan")], size=(320, 180),
                               fps=25, gop=100)
    given_up = gop_layout(probe(long_groups, SamplingConfig()), give_up_gap_s=1.25)
    assert not given_up.complete and given_up.packets < 40, "keyframes 4 s apart: reading stops after 1.35 s"
    assert not given_up.short(1.0, 0.0, 8.0)


def test_keyframe_first_finds_what_one_decode_of_every_frame_finds(tmp_path, phone_clip, detector, embedder):
    runtime = make_runtime(tmp_path / "home", detector, embedder)
    runtime.gallery.add("Yao Ming", "person", "nba", "ai_if_labelled", [],
                        runtime.enroller.enroll([package_photo("yaoming.jpg")]))
    runtime.gallery.refresh()
    scanner = runtime.scanner
    results = {}
    for keyframe_first in (False, True):
        scanner.config = ScanConfig(sampling=SamplingConfig(keyframe_first=keyframe_first))
        results[keyframe_first] = scanner.scan(phone_clip, runtime.gallery)
    linear, first = results[False], results[True]
    assert not linear.decode.keyframe_first and first.decode.keyframe_first
    assert first.decode.decoded < 0.6 * linear.decode.decoded, (first.decode.decoded, linear.decode.decoded)
    assert first.decode.scene_cuts >= 1, "the cut between keyframes is found where the faces changed"

    def spans(result):
        return sorted((t.start_s, t.end_s) for t, m in zip(result.tracks, result.matches)
                      if m.identity is not None and m.identity.name == "Yao Ming" and m.status == "match")

    assert spans(linear) and len(spans(linear)) == len(spans(first)), (spans(linear), spans(first))
    for (start, end), (first_start, first_end) in zip(spans(linear), spans(first)):
        assert abs(start - first_start) <= 0.5 and abs(end - first_end) <= 0.5, (spans(linear), spans(first))
    assert [f.identity.name for f in linear.findings] == [f.identity.name for f in first.findings] == ["Yao Ming"]
    assert linear.verdict.action == first.verdict.action


def test_a_cutaway_between_two_keyframes_of_the_same_faces_is_decoded(tmp_path, detector, embedder, photo):
    """Grace Hopper for 0.6 s between two keyframes that both show Yao Ming: the keyframes' faces agree,
    but the cut's frame, coded without a keyframe, is as big as a keyframe, so the stretch is decoded and
    her appearance found as one decode of every frame finds it."""
    scenes = [Scene(photo("yaoming.jpg"), 4.2, "zoom_in"), Scene(photo("grace_hopper.jpg"), 0.6, "static"),
              Scene(photo("yaoming.jpg"), 3.2, "zoom_out")]
    clip = encode_video(tmp_path / "cutaway.mp4", scenes, size=(640, 360), fps=25, gop=25)
    layout = gop_layout(probe(clip, SamplingConfig()))
    assert layout.cut_between(4.0, 5.0) and not layout.cut_between(1.0, 4.0), layout.cut_like
    scanner = make_runtime(tmp_path / "home", detector, embedder).scanner
    found = {}
    for keyframe_first in (False, True):
        scanner.config = ScanConfig(sampling=SamplingConfig(keyframe_first=keyframe_first))
        result = scanner.scan(clip, None)
        assert result.decode.keyframe_first == keyframe_first
        found[keyframe_first] = [(t.start_s, t.end_s) for t in result.tracks if 4.1 <= t.start_s < 4.8]
    assert found[False] and len(found[True]) == len(found[False]), found
    for (start, end), (first_start, first_end) in zip(found[False], found[True]):
        assert abs(start - first_start) <= 0.3 and abs(end - first_end) <= 0.3, found


def test_a_keyframe_first_scan_in_segments_finds_what_the_whole_scan_finds(tmp_path, phone_clip, detector,
                                                                          embedder):
    """Each segment starts its own keyframe pass (as workers scan long videos); merged through the
    segments' JSON form, the findings and verdict are the whole scan's, and Yao Ming's time on screen
    agrees within a second."""
    runtime = make_runtime(tmp_path / "home", detector, embedder)
    runtime.gallery.add("Yao Ming", "person", "nba", "ai_if_labelled", [],
                        runtime.enroller.enroll([package_photo("yaoming.jpg")]))
    runtime.gallery.refresh()
    scanner = runtime.scanner
    whole = build_report(scanner.scan(phone_clip, runtime.gallery, uploader="user-1"))
    parts = []
    for start, end in ((0.0, 3.0), (3.0, 6.0), (6.0, None)):
        observation = scanner.observe(phone_clip, start_s=start, end_s=end, gallery=runtime.gallery)
        assert observation.decode.keyframe_first
        parts.append(codec.decode(json.loads(json.dumps(codec.encode(observation)))))
    info = probe(phone_clip, runtime.settings.scan.sampling)
    merged = build_report(merge_segments(info, read_provenance(phone_clip), parts, scanner, runtime.gallery, "user-1"))

    def seen(report):
        return sum(f["end_s"] - f["start_s"] for f in report["findings"] if f["identity"]["name"] == "Yao Ming")

    assert [(f["identity"]["name"], f["action"]) for f in merged["findings"]] == \
        [(f["identity"]["name"], f["action"]) for f in whole["findings"]]
    assert merged["verdict"]["action"] == whole["verdict"]["action"]
    assert seen(whole) > 3.0 and abs(seen(merged) - seen(whole)) <= 1.0, (seen(merged), seen(whole))


def test_only_decoders_that_skip_to_keyframes_get_the_keyframe_pass(tmp_path, phone_clip):
    """FFmpeg's VP9 decoder gives every frame whatever skip_frame says: a VP9 clip with a keyframe a
    second keeps the one decode, while its H.264 original gets the keyframe pass."""
    config = SamplingConfig()
    assert KeyframeFirst.plan(probe(phone_clip, config), config, 0.0, None) is not None
    vp9 = transcode(phone_clip, tmp_path / "phone.webm", "libvpx-vp9",
                    options={"g": "25", "crf": "40", "b": "0", "deadline": "realtime", "cpu-used": "8"})
    info = probe(vp9, config)
    assert info.codec == "vp9" and gop_layout(info).short(1.0, 0.0, info.duration_s)
    assert KeyframeFirst.plan(info, config, 0.0, None) is None
