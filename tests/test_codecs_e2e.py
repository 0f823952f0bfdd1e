"""The codecs platforms and phones store video in (HEVC, 10-bit HEVC, VP9, AV1, MPEG-4 Part 2), each a
re-encode of the same clip of a registered person: every one is decoded, sampled and scanned, and
the person found over the clip, as in the H.264 original."""
from __future__ import annotations

import av
import pytest

from samples.clips import Scene, encode_video, transcode
from samples.photos import package_photo
from tests.conftest import make_runtime

CODECS = [
    pytest.param("libx265", "yuv420p", ".mp4", {"crf": "28", "preset": "ultrafast"}, "hevc", id="hevc"),
    pytest.param("libx265", "yuv420p10le", ".mp4", {"crf": "28", "preset": "ultrafast"}, "hevc", id="hevc-10bit"),
    pytest.param("libvpx-vp9", "yuv420p", ".webm", {"crf": "34", "b": "0", "deadline": "realtime", "cpu-used": "8"},
                 "vp9", id="vp9"),
    pytest.param("libsvtav1", "yuv420p", ".mp4", {"crf": "40", "preset": "12"}, "av1", id="av1"),
    pytest.param("mpeg4", "yuv420p", ".avi", {"qscale": "5"}, "mpeg4", id="mpeg4"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory, detector, embedder):
    runtime = make_runtime(tmp_path_factory.mktemp("home"), detector, embedder)
    enrollment = runtime.enroller.enroll([package_photo("yaoming.jpg")])
    assert enrollment.accepted, enrollment.rejected
    runtime.gallery.add("Yao Ming", "person", "nba", "no_use", [], enrollment)
    return runtime.settings.home


@pytest.fixture(scope="module")
def original(tmp_path_factory, photo):
    return encode_video(tmp_path_factory.mktemp("clips") / "yao.mp4", [Scene(photo("yaoming.jpg"), 3.0, "zoom_in")],
                        size=(640, 360), fps=25)


@pytest.mark.parametrize(("encoder", "pix_fmt", "suffix", "options", "codec"), CODECS)
def test_a_registered_person_is_found_whatever_the_codec(tmp_path, home, original, detector, embedder,
                                                         encoder, pix_fmt, suffix, options, codec):
    try:
        av.codec.Codec(encoder, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV build has no {encoder} encoder to make the clip")
    path = transcode(original, tmp_path / f"yao{suffix}", encoder, pix_fmt, options)
    runtime = make_runtime(home, detector, embedder)
    runtime.gallery.refresh()
    result = runtime.scanner.scan(path, runtime.gallery)
    assert result.info.codec == codec and result.info.width == 640
    found = [(t.start_s, t.end_s) for t, m in zip(result.tracks, result.matches)
             if m.identity is not None and m.identity.name == "Yao Ming"]
    assert found and min(s for s, _ in found) <= 0.5 and max(e for _, e in found) >= 2.4, \
        [(t.start_s, t.end_s, m.status, m.reason) for t, m in zip(result.tracks, result.matches)]
    assert [f.identity.name for f in result.findings] == ["Yao Ming"]
