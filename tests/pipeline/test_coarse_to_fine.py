"""Coarse to fine: samples between two coarse ones are analysed only when the faces change, and a
scan that skips them finds the same people over the same spans as one that analyses every sample."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.config import QualityConfig, SamplingConfig, ScanConfig
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess
from pipeline.faces.tracking import same_faces
from pipeline.scan import _CoarseToFine
from pipeline.synthetic.analyzer import FrameCollector
from pipeline.types import FaceObservation, Frame
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from tests.conftest import make_runtime

YAO_AREA = (600.0, 80.0, 900.0, 300.0)  # player #13 (Yao Ming) and neighbours in players.jpg


def _faces(detector, image, shift=(0.0, 0.0)) -> list[FaceObservation]:
    """The photo's faces as the scan observes them (boxes moved by `shift`), not yet embedded."""
    faces = []
    for d in detector.detect(image):
        crop = align_face(image, d.landmarks)
        faces.append(FaceObservation(t_s=0.0, frame_index=0, bbox=d.bbox + np.float32([*shift, *shift]),
                                     det_score=d.score, landmarks=d.landmarks, embedding=None,
                                     quality=assess(d, crop, QualityConfig()), crop=crop))
    return faces


def test_same_faces_needs_every_face_in_place(detector, photo):
    faces = _faces(detector, photo("players.jpg"))
    assert len(faces) >= 5
    assert same_faces(faces, faces[::-1], 0.3, 0.3), "order does not matter"
    assert not same_faces(faces, faces[1:], 0.3, 0.3), "a face left"
    assert not same_faces(faces[1:], faces, 0.3, 0.3), "a face came"
    width = float(faces[0].bbox[2] - faces[0].bbox[0])
    assert not same_faces(faces, _faces(detector, photo("players.jpg"), (width, 0.0)), 0.3, 0.3), "everyone moved"
    assert same_faces([], [], 0.3, 0.3)


def test_same_place_but_another_person_is_not_the_same_face(detector, embedder, photo):
    """Two people at the same spot in two samples: the boxes agree, the real embeddings do not."""
    faces = []
    for name in ("yaoming.jpg", "grace_hopper.jpg"):
        image = photo(name)
        face = _faces(detector, image)[0]
        face.embedding = embedder.embed([face.crop])[0]
        faces.append(face)
    first, second = faces
    second.bbox = first.bbox.copy()
    assert not same_faces([first], [second], 0.3, 0.3)
    assert same_faces([first], [first], 0.3, 0.3)


def test_the_same_people_moved_by_a_pan_are_the_same_faces_when_embedded(detector, embedder, photo):
    """Everyone in players.jpg shifted by a face width: unembedded, nothing proves who they are; embedded,
    each is paired with themself by embedding, so a pan alone does not make the held samples analysed,
    while one person swapped for a stranger still does."""
    def embedded(shift=(0.0, 0.0)):
        faces = _faces(detector, photo("players.jpg"), shift)
        for face, vector in zip(faces, embedder.embed([f.crop for f in faces])):
            face.embedding = vector
        return faces

    before = embedded()
    width = float(before[0].bbox[2] - before[0].bbox[0])
    panned = embedded((width, 0.0))
    assert not same_faces(before, panned, 0.3, 0.3), "without relinking, moved faces differ"
    assert same_faces(before, panned, 0.3, 0.3, relink_similarity=0.5)
    stranger = _faces(detector, photo("grace_hopper.jpg"))[0]
    stranger.embedding = embedder.embed([stranger.crop])[0]
    assert not same_faces(before, panned[1:] + [stranger], 0.3, 0.3, relink_similarity=0.5)


def test_frames_not_analysed_still_reach_the_frame_detectors():
    collector = FrameCollector(expected_frames=4, keep=4, face_signals=None)
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(4)]
    for i, image in enumerate(images):
        frame = Frame(index=i, t_s=i * 0.5, image=image, reason="interval")
        (collector.offer(frame, []) if i % 2 == 0 else collector.keep(frame))
    assert [int(f[0, 0, 0]) for f in collector.frames] == [0, 1, 2, 3] and collector.times == [0.0, 0.5, 1.0, 1.5]


def test_keyframes_kept_for_the_watermark_span_the_whole_video():
    """A phone records a keyframe a second: the 8 kept must not all come from the first 8 seconds."""
    def kept(keyframes: int) -> list[int]:
        collector = FrameCollector(expected_frames=2 * keyframes, keep=8, face_signals=None)
        for i in range(keyframes):
            image = np.full((4, 4, 3), i, np.int32)  # its number, in its pixels
            collector.keep(Frame(index=2 * i, t_s=float(i), image=image, reason="keyframe", keyframe=True))
            collector.keep(Frame(index=2 * i + 1, t_s=i + 0.5, image=image, reason="interval"))
        return [int(f[0, 0, 0]) for f in collector.keyframes]

    assert kept(5) == [0, 1, 2, 3, 4]
    assert kept(8) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert kept(9) == [0, 2, 4, 6, 8]
    assert kept(40) == [0, 8, 16, 24, 32]
    assert kept(600) == [0, 128, 256, 384, 512]  # a 10-minute phone recording
    for n in range(1, 200):
        spread = kept(n)
        assert len(spread) <= 8 and spread[0] == 0 and spread == sorted(spread)
        assert spread[-1] >= (n - 1) // 2, n  # the last kept lies in the second half


@pytest.fixture(scope="module")
def clip(tmp_path_factory, photo):
    """A static shot of Yao Ming among players, a pan over strangers, a zoom on Yao Ming."""
    scenes = [Scene(photo("players.jpg"), 4.0, "static", crop=YAO_AREA), Scene(photo("gdp.jpg"), 2.0, "pan"),
              Scene(photo("yaoming.jpg"), 2.0, "zoom_in")]
    return encode_video(tmp_path_factory.mktemp("c2f") / "clip.mp4", scenes, size=(640, 360), fps=25)


def test_coarse_to_fine_finds_the_same_appearances(tmp_path, clip, detector, embedder):
    runtime = make_runtime(tmp_path / "home", detector, embedder)
    enrollment = runtime.enroller.enroll([package_photo("yaoming.jpg")])
    runtime.gallery.add("Yao Ming", "person", "nba", "ai_if_labelled", [], enrollment)
    runtime.gallery.refresh()
    scanner = runtime.scanner
    results = {}
    for coarse in (0.0, 1.0):
        scanner.config = ScanConfig(sampling=SamplingConfig(coarse_interval_s=coarse))
        results[coarse] = scanner.scan(clip, runtime.gallery)
    every, fine = results[0.0], results[1.0]
    assert every.decode.skipped == 0 and every.frames_sampled == fine.frames_sampled
    assert fine.decode.skipped >= 3, "the static shot's samples between coarse ones are not analysed"

    def spans(result):
        return sorted((round(t.start_s, 1), round(t.end_s, 1)) for t, m in zip(result.tracks, result.matches)
                      if m.identity is not None and m.identity.name == "Yao Ming" and m.status == "match")

    assert spans(every) and len(spans(every)) == len(spans(fine))
    for (start, end), (fine_start, fine_end) in zip(spans(every), spans(fine)):
        assert abs(start - fine_start) <= 0.5 and abs(end - fine_end) <= 0.5
    assert [f.identity.name for f in every.findings] == [f.identity.name for f in fine.findings] == ["Yao Ming"]


@pytest.mark.parametrize(("coarse", "expected"), [
    (1.0, [(0.0, []), (1.04, [0.52]), (2.0, [1.52]), (3.04, [2.52]), (3.2, []), (4.0, [3.52]), (None, [4.52])]),
    (0.0, [(t, []) for t in (0.0, 0.52, 1.04, 1.52, 2.0, 2.52, 3.04, 3.2, 3.52, 4.0, 4.52)])])
def test_coarse_samples_lie_on_a_grid_and_cuts_are_always_coarse(coarse, expected):
    """Sample times as the sampler gives them (the nearest decoded frame at or after each target)."""
    times = [0.0, 0.52, 1.04, 1.52, 2.0, 2.52, 3.04, 3.2, 3.52, 4.0, 4.52]
    frames = [Frame(index=i, t_s=t, image=np.zeros((2, 2, 3), np.uint8), reason="scene_cut" if t == 3.2 else "interval")
              for i, t in enumerate(times)]
    steps = _CoarseToFine(ScanConfig(sampling=SamplingConfig(coarse_interval_s=coarse))).steps(iter(frames))
    assert [(f.t_s if f else None, [h.t_s for h in held]) for f, held in steps] == expected


def _slide() -> np.ndarray:
    slide = np.full((720, 1280, 3), (235, 238, 240), np.uint8)
    for line in range(5):
        cv2.putText(slide, f"- point {line + 1}: a sentence of text", (80, 120 + 90 * line), cv2.FONT_HERSHEY_SIMPLEX,
                    1.3, (50, 50, 50), 3, cv2.LINE_AA)
    return slide


def test_a_still_picture_is_detected_once_and_a_small_face_entering_it_is_not_missed(tmp_path, detector, embedder,
                                                                                      photo):
    """A slide held for 8.4 s; from 3.3 to 6.3 s a small face (a box of about 45x56 px, no cut) sits in its corner.
    The unchanged coarse samples keep the faces detected before them; the face's appearance changes the
    picture, so it is detected and its track spans what analysing every sample finds."""
    face_photo = photo("yaoming.jpg")
    box = detector.detect(face_photo)[0].bbox
    side = float(box[3] - box[1])
    x1, y1 = int(box[0] - side * 0.4), int(box[1] - side * 0.4)
    patch = face_photo[max(0, y1):int(box[3] + side * 0.4), max(0, x1):int(box[2] + side * 0.4)]
    patch = cv2.resize(patch, (int(patch.shape[1] * 56 / side), int(patch.shape[0] * 56 / side)),
                       interpolation=cv2.INTER_AREA)
    with_face = _slide()
    with_face[560:560 + patch.shape[0], 1100:1100 + patch.shape[1]] = patch
    scenes = [Scene(_slide(), 3.3, "static"), Scene(with_face, 3.0, "static"), Scene(_slide(), 2.1, "static")]
    clip = encode_video(tmp_path / "slide.mp4", scenes, size=(1280, 720), fps=25)
    scanner = make_runtime(tmp_path / "home", detector, embedder).scanner
    results = {}
    for coarse in (0.0, 1.0):
        scanner.config = ScanConfig(sampling=SamplingConfig(coarse_interval_s=coarse))
        results[coarse] = scanner.scan(clip, None)
    every, fine = results[0.0], results[1.0]
    assert every.decode.unchanged == 0 and fine.decode.unchanged >= 4, "the still slide is not detected again"
    assert every.decode.scene_cuts == fine.decode.scene_cuts == 0, "the face's entry is no cut"
    spans = {coarse: [(t.start_s, t.end_s) for t in result.tracks] for coarse, result in results.items()}
    assert len(spans[0.0]) == len(spans[1.0]) == 1, spans
    (start, end), (fine_start, fine_end) = spans[0.0][0], spans[1.0][0]
    assert 3.2 <= start <= 3.9 and 5.7 <= end <= 6.4, spans
    assert abs(start - fine_start) <= 0.5 and abs(end - fine_end) <= 0.5, spans
