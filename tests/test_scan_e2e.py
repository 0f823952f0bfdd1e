"""Whole scans of videos built from real photos: the right people at the right times."""
from __future__ import annotations

import cv2
import pytest

from samples.clips import Scene, encode_video, scene_times
from samples.packages import dlib_johns, face_recognition_photos
from samples.photos import package_photo
from tests.conftest import make_runtime

INTERVAL = 0.5
YAO_AREA = (600.0, 80.0, 900.0, 300.0)  # player #13 (Yao Ming) and neighbours in players.jpg


@pytest.fixture(scope="module")
def home(tmp_path_factory, detector, embedder):
    """A gallery with Yao Ming, Obama and John Salley registered by their rights holders."""
    runtime = make_runtime(tmp_path_factory.mktemp("home"), detector, embedder)
    johns = dlib_johns()
    photos = face_recognition_photos()
    register = [("Yao Ming", "nba", [package_photo("yaoming.jpg")]),
                ("Barack Obama", "obama-office", [photos["obama"]]),
                ("John Salley", "salley-mgmt", johns["John_Salley"][:4])]
    for name, owner, refs in register:
        enrollment = runtime.enroller.enroll(refs)
        assert enrollment.accepted and not enrollment.rejected, enrollment.rejected
        runtime.gallery.add(name, "person", owner, "ai_if_labelled", [], enrollment)
    return runtime.settings.home


def _scan(home, detector, embedder, path, **kwargs):
    runtime = make_runtime(home, detector, embedder)
    runtime.gallery.refresh()
    return runtime.scanner.scan(path, runtime.gallery, **kwargs)


def _found(result):
    return {(t.track_id, m.identity.name): (t.start_s, t.end_s) for t, m in zip(result.tracks, result.matches)
            if m.identity is not None}


def _img(path):
    return cv2.imread(str(path))


def test_cuts_between_people_with_pans_and_zooms(tmp_path, home, detector, embedder):
    johns = dlib_johns()
    photos = face_recognition_photos()
    scenes = [Scene(_img(package_photo("gdp.jpg")), 2.0, "pan"),                   # strangers
              Scene(_img(photos["obama2"]), 2.5, "zoom_in"),                        # a different Obama photo
              Scene(_img(johns["John_Salley"][7]), 2.0, "static"),                 # an unregistered photo of Salley
              Scene(_img(package_photo("players.jpg")), 2.5, "pan", crop=YAO_AREA),
              Scene(_img(johns["John_Simm"][0]), 2.0, "zoom_out")]                 # an unregistered person
    spans = scene_times(scenes)
    path = encode_video(tmp_path / "cuts.mp4", scenes, size=(640, 360), fps=25)
    result = _scan(home, detector, embedder, path)
    found = {}
    for t, m in zip(result.tracks, result.matches):
        if m.identity is not None:
            found.setdefault(m.identity.name, []).append((t.start_s, t.end_s))
    assert set(found) == {"Barack Obama", "John Salley", "Yao Ming"}, found
    expected = {"Barack Obama": spans[1], "John Salley": spans[2], "Yao Ming": spans[3]}
    for name, (start, end) in expected.items():
        first = min(s for s, _ in found[name])
        last = max(e for _, e in found[name])
        assert start - 1e-6 <= first <= start + INTERVAL + 0.1, (name, first, start)
        assert end - INTERVAL - 0.1 <= last < end + 1e-6, (name, last, end)
    names = {f.identity.name for f in result.findings}
    assert names == set(expected)
    assert result.verdict.action.value == "allow"  # real footage, policy allows real footage


def test_portrait_phone_clip_with_face_entering_and_leaving(tmp_path, home, detector, embedder):
    yao = _img(package_photo("yaoming.jpg"))
    blank = cv2.resize(_img(package_photo("astronaut.png")), (512, 512))[:, :, :] * 0 + 40
    scenes = [Scene(blank, 1.5, "static"), Scene(yao, 3.0, "pan"), Scene(blank, 1.5, "static")]
    path = encode_video(tmp_path / "portrait.mp4", scenes, size=(360, 640), fps=30, rotation=90)
    result = _scan(home, detector, embedder, path)
    assert (result.info.width, result.info.height) == (360, 640)
    matched = [(t, m) for t, m in zip(result.tracks, result.matches) if m.identity is not None]
    assert len(matched) == 1, "one person on screen is one track"
    track, match = matched[0]
    assert match.identity.name == "Yao Ming"
    assert 1.5 - 1e-6 <= track.start_s <= 2.0 + 0.1
    assert 4.0 - 0.1 <= track.end_s < 4.5 + 1e-6


def test_empty_gallery_still_reports_tracks(tmp_path, detector, embedder):
    scenes = [Scene(_img(package_photo("gdp.jpg")), 2.0, "static")]
    path = encode_video(tmp_path / "g.mp4", scenes, size=(1280, 720), fps=25)
    runtime = make_runtime(tmp_path / "empty-home", detector, embedder)
    result = runtime.scanner.scan(path, None)
    assert len(result.tracks) >= 2
    assert all(m.identity is None for m in result.matches)
    assert result.findings == []


def test_the_face_swap_probe_scores_only_tracks_close_to_a_registered_likeness(tmp_path, home, detector, embedder):
    """Its score acts on a registered person's finding only, so strangers cost no CLIP call: in a clip
    of strangers then Obama, only Obama's track is scored; strangers alone are not scored at all."""
    photos = face_recognition_photos()
    scenes = [Scene(_img(dlib_johns()["John_Simm"][0]), 2.0, "zoom_out"),   # an unregistered person
              Scene(_img(photos["obama2"]), 2.5, "zoom_in")]                # a different Obama photo
    result = _scan(home, detector, embedder, encode_video(tmp_path / "mixed.mp4", scenes, size=(640, 360)))
    obama = {t.track_id for t, m in zip(result.tracks, result.matches)
             if m.identity is not None and m.identity.name == "Barack Obama"}
    strangers = {t.track_id for t, m in zip(result.tracks, result.matches) if m.status == "no_match"}
    assert obama and strangers, [(t.track_id, m.status, m.reason) for t, m in zip(result.tracks, result.matches)]
    swap = next(s for s in result.synthetic.signals if s.name == "face_swap")
    assert set(swap.tracks) == obama and "close to a registered likeness" in swap.detail

    alone = _scan(home, detector, embedder, encode_video(tmp_path / "strangers.mp4", scenes[:1], size=(640, 360)))
    swap = next(s for s in alone.synthetic.signals if s.name == "face_swap")
    assert alone.tracks and swap.score is None and "not scored" in swap.detail
