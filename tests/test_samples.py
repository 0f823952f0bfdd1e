"""samples/ delivers what it promises: the real photos, and videos as requested."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from samples import packages
from samples.broken import (write_audio_only, write_huge_frame_video, write_text_as_mp4, write_truncated_mp4,
                            write_zero_byte)
from samples.clips import Scene, encode_video, frame_at, reported_rotation, scene_times
from samples.photos import package_photo, photo_package

PACKAGE_PHOTO_SHAPES = {
    "players.jpg": (800, 1237, 3),
    "gdp.jpg": (665, 500, 3),
    "yaoming.jpg": (287, 233, 3),
    "t1.jpg": (886, 1280, 3),
    "grace_hopper.jpg": (600, 512, 3),
    "astronaut.png": (512, 512, 3),
}
JOHNS = {"John_Salley", "John_Savage", "John_Schneider", "John_Shimkus", "John_Simm"}
FACE_RECOGNITION_SHAPES = {
    "32bit": (1200, 626, 4),
    "biden": (2204, 970, 3),
    "obama": (1137, 910, 3),
    "obama2": (1200, 626, 3),
    "obama3": (2333, 1434, 3),
    "obama_partial_face": (1137, 491, 3),
    "obama_partial_face2": (1137, 551, 3),
}
SIZE = (320, 240)


def _decode(path: Path) -> tuple[dict, list[av.VideoFrame]]:
    """What the video stream's header says (read before the container closes) and all its decoded frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        header = {
            "stored_size": (stream.codec_context.width, stream.codec_context.height),
            "average_rate": stream.average_rate,
            "frames": stream.frames,
            "duration_s": float(stream.duration * stream.time_base),
        }
        return header, list(container.decode(stream))


def _count_decodable(path: Path) -> int:
    """Frames decoded before the first error (opening included), as a scanner salvaging a damaged upload would."""
    decoded = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                decoded += 1
    except av.error.FFmpegError:
        pass
    return decoded


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame turned as its display matrix says, as a player shows it."""
    return np.rot90(frame.to_ndarray(format="bgr24"), k=frame.rotation // 90)


@pytest.fixture(scope="module")
def two_scenes() -> list[Scene]:
    """Two different photos, the second zooming in on Grace Hopper's face."""
    players = cv2.imread(str(package_photo("players.jpg")))
    hopper = cv2.imread(str(package_photo("grace_hopper.jpg")))
    return [Scene(players, 0.8, "pan"), Scene(hopper, 0.6, "zoom_in", crop=(130, 40, 390, 330))]


def test_cache_dir_prefers_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_TEST_CACHE", str(tmp_path / "env"))
    assert packages.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert packages.cache_dir() == tmp_path / "env"
    assert (tmp_path / "env").is_dir()


@pytest.mark.parametrize("name", sorted(PACKAGE_PHOTO_SHAPES))
def test_package_photo_decodes(name):
    image = cv2.imread(str(package_photo(name)))
    assert image is not None and image.shape == PACKAGE_PHOTO_SHAPES[name]


@pytest.mark.parametrize("name", sorted(PACKAGE_PHOTO_SHAPES))
def test_photo_package_names_the_installed_distribution_that_ships_the_photo(name):
    distribution, version = photo_package(name)
    installed = importlib.metadata.distribution(distribution)
    assert installed.version == version
    shipped = {Path(installed.locate_file(f)).resolve() for f in installed.files or []}
    assert package_photo(name).resolve() in shipped


def test_unknown_package_photo_is_a_clear_error():
    with pytest.raises(RuntimeError, match="unknown package photo"):
        package_photo("nobody.jpg")


def test_dlib_johns_are_five_people_with_eleven_face_chips():
    people = packages.dlib_johns()
    assert set(people) == JOHNS
    for photos in people.values():
        assert len(photos) == 11
        assert all(cv2.imread(str(p)).shape == (150, 150, 3) for p in photos)


def test_face_recognition_photos_decode():
    photos = packages.face_recognition_photos()
    assert set(photos) == set(FACE_RECOGNITION_SHAPES)
    for stem, path in photos.items():
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == FACE_RECOGNITION_SHAPES[stem]


def test_failed_download_is_a_runtime_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"face_recognition==0\.0\.0 sdist with pip failed"):
        packages._download_dist(tmp_path, "face_recognition", "0.0.0")
    assert list(tmp_path.iterdir()) == []


def test_scene_times_are_consecutive(two_scenes):
    assert scene_times(two_scenes) == [(0.0, 0.8), (0.8, 0.8 + 0.6)]


def test_pan_and_zoom_move_the_window(two_scenes):
    pan, zoom = two_scenes
    first, last = frame_at([pan], 0.0, SIZE), frame_at([pan], pan.duration_s, SIZE)
    assert np.abs(first.astype(int) - last).mean() > 10
    x0, y0, x1, y1 = zoom.crop
    cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, 0.3 * (x1 - x0), 0.3 * (y1 - y0)
    closer = Scene(zoom.image, 1.0, crop=(cx - half_w, cy - half_h, cx + half_w, cy + half_h))
    assert np.abs(frame_at([zoom], zoom.duration_s, SIZE).astype(int) - frame_at([closer], 0.0, SIZE)).mean() < 5


@pytest.mark.parametrize("rotation", [None, 90, -90, 270, 180])
def test_encoded_video_matches_request(tmp_path, two_scenes, rotation):
    path = encode_video(tmp_path / "v.mp4", two_scenes, size=SIZE, fps=25, rotation=rotation)
    header, frames = _decode(path)
    quarter_turned = rotation is not None and rotation % 180
    assert header["stored_size"] == (SIZE[::-1] if quarter_turned else SIZE)
    assert header["average_rate"] == 25 and len(frames) == header["frames"] == 35
    assert header["duration_s"] == pytest.approx(1.4)
    assert all(f.rotation == reported_rotation(rotation or 0) for f in frames)
    for frame in frames[::10]:
        expected = frame_at(two_scenes, float(frame.time), SIZE)
        assert np.abs(_upright(frame).astype(int) - expected).mean() < 6


def test_gop_sets_exact_keyframe_interval(tmp_path, two_scenes):
    _, frames = _decode(encode_video(tmp_path / "g.mp4", two_scenes, size=SIZE, gop=15))
    assert [i for i, f in enumerate(frames) if f.key_frame] == [0, 15, 30]


def test_vfr_has_irregular_timestamps_at_the_mean_rate(tmp_path, two_scenes):
    _, frames = _decode(encode_video(tmp_path / "vfr.mp4", two_scenes, size=SIZE, fps=25, vfr=True))
    steps = {round(b.time - a.time, 6) for a, b in zip(frames, frames[1:])}
    assert steps == {0.02, 0.06, 0.04, 0.03, 0.05}  # 1/2, 3/2, 1, 3/4 and 5/4 of 1/25 s
    assert len(frames) == 35


def test_unreadable_inputs_fail_to_open(tmp_path):
    for path in (write_text_as_mp4(tmp_path / "text.mp4"), write_zero_byte(tmp_path / "empty.mp4")):
        with pytest.raises(av.error.InvalidDataError):
            av.open(str(path))


def test_truncated_mp4_variants(tmp_path, two_scenes):
    tail_moov = encode_video(tmp_path / "tail.mp4", two_scenes, size=SIZE)
    for box in ("mdat", "moov"):
        assert _count_decodable(write_truncated_mp4(tmp_path / f"cut_{box}.mp4", tail_moov, box)) == 0
    head_moov = encode_video(tmp_path / "head.mp4", two_scenes, size=SIZE, faststart=True)
    cut = write_truncated_mp4(tmp_path / "cut_fast.mp4", head_moov, "mdat")
    assert 0 < _count_decodable(cut) < 35


@pytest.mark.parametrize("codec", ["aac", "pcm_s16le"])
def test_audio_only_has_no_video(tmp_path, codec):
    with av.open(str(write_audio_only(tmp_path / "tone.m4a", 2.0, codec))) as container:
        assert [s.type for s in container.streams] == ["audio"]
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.05)


def test_huge_frame_video_decodes_at_full_size(tmp_path):
    _, frames = _decode(write_huge_frame_video(tmp_path / "huge.mp4"))
    assert [(f.width, f.height) for f in frames] == [(8192, 4608)] * 2
