"""Face forensics on H.264 clips: a real photo, the same photo with Yao Ming's face seamlessly
cloned in (the kind of fake an end-to-end test builds), and a clip whose faces are too small to measure."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.config import ScanConfig
from pipeline.synthetic.face_forensics import FaceForensics, FaceForensicsConfig, _head_crop, texture_differences
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess
from pipeline.scan import Scanner
from pipeline.synthetic.analyzer import SyntheticAnalyzer, SyntheticConfig
from pipeline.types import FaceObservation, Frame, Track
from samples.clips import Scene, encode_video, frame_at
from samples.pastes import SourceFace, clone_face

SIZE = (640, 360)
CONFIG = FaceForensicsConfig()


def _largest(detector, image):
    return max(detector.detect(image), key=lambda f: float(f.bbox[2] - f.bbox[0]))


@pytest.fixture(scope="module")
def pictures(detector, photo):
    """Grace Hopper as she is, and with Yao Ming's face cloned onto hers (NORMAL_CLONE, landmark hull)."""
    grace, yao = photo("grace_hopper.jpg"), photo("yaoming.jpg")
    target = _largest(detector, grace)
    source = SourceFace("yaoming", yao, _largest(detector, yao).landmarks)
    return {"real": grace, "fake": clone_face(grace, target.landmarks, source, "normal", "hull"),
            "landmarks": target.landmarks}


def _letterboxed(image: np.ndarray, fill: float = 1.0) -> np.ndarray:
    """The picture shrunk to `fill` of the clip size on a grey canvas, so the encoder sees it unresampled."""
    h, w = image.shape[:2]
    scale = fill * min(SIZE[0] / w, SIZE[1] / h)
    resized = cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(resized, 0, SIZE[1] - resized.shape[0], 0, SIZE[0] - resized.shape[1],
                              cv2.BORDER_CONSTANT, value=(90, 90, 90))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, pictures, photo):
    folder = tmp_path_factory.mktemp("forensics")
    clips = {kind: encode_video(folder / f"{kind}.mp4", [Scene(_letterboxed(pictures[kind]), 2.0)], size=SIZE, crf=18)
             for kind in ("real", "fake")}
    small = [Scene(_letterboxed(photo("t1.jpg"), 0.8), 1.5)]
    clips["small_faces"] = encode_video(folder / "small.mp4", small, size=SIZE)
    return clips


@pytest.fixture(scope="module")
def scanner(detector, embedder):
    analyzer = SyntheticAnalyzer(SyntheticConfig(watermark=False), face_signals_factory=FaceForensics)
    return Scanner(detector, embedder, ScanConfig(), analyzer)


def _signals(scanner, path):
    result = scanner.scan(path, None)
    return {s.name: s for s in result.synthetic.signals}, result


def test_cloned_face_texture_departs_from_the_head_around_it(pictures):
    real = texture_differences(pictures["real"], pictures["landmarks"], CONFIG.max_crop_pixels)
    fake = texture_differences(pictures["fake"], pictures["landmarks"], CONFIG.max_crop_pixels)
    assert real is not None and fake is not None
    # Yao Ming's face comes from a small, soft JPEG: smoother and less grainy than Grace Hopper's film photo.
    assert fake[2] < real[2] - 1.0


def test_real_clip_scores_low_and_cloned_clip_high(scanner, clips):
    real, _ = _signals(scanner, clips["real"])
    fake, fake_result = _signals(scanner, clips["fake"])
    for signals in (real, fake):
        assert signals["face_blending"].score is not None and signals["face_blending"].weight == CONFIG.blend_weight
    # The separation measured by benchmarks/face_forensics.py: real tracks sit below the real-footage
    # 95th percentile (score 0.5), this clone far above it.
    assert real["face_blending"].score < 0.5 < fake["face_blending"].score
    assert fake["face_blending"].score - real["face_blending"].score > 0.6
    assert "track" in fake["face_blending"].detail and "smoother" in fake["face_blending"].detail
    assert fake_result.synthetic.score > _signals(scanner, clips["real"])[1].synthetic.score
    for name in ("identity_jitter", "landmark_jitter"):
        assert real[name].weight == 0.0 and fake[name].weight == 0.0


def test_no_measurable_face_gives_no_score(scanner, clips, detector, embedder, photo):
    # Faces the scan drops as too small never reach a track: every signal is absent.
    signals, _ = _signals(scanner, clips["small_faces"])
    assert all(signals[name].score is None for name in ("face_blending", "identity_jitter", "landmark_jitter"))
    # Tracked faces below min_face_px are not measured either, and the detail says why.
    forensics = FaceForensics(FaceForensicsConfig(min_face_px=64))
    frame = Frame(0, 0.0, _letterboxed(photo("t1.jpg")), "interval")
    faces = _observations(detector, embedder, frame)
    forensics.observe(frame, faces)
    tracks = [Track(i + 1, [face]) for i, face in enumerate(faces)]
    blending = forensics.signals(tracks)[0]
    assert len(tracks) >= 5 and blending.score is None and "at least 64 px" in blending.detail


def test_a_head_filling_a_large_frame_is_measured_on_a_bounded_crop(detector, embedder, pictures):
    """observe() shrinks each head crop to about max_crop_pixels before measuring, which is what
    bounds its cost per face (the cost itself is measured by benchmarks/face_forensics.py, not
    here). A 1080p head-and-shoulders shot is shrunk ~9x and still measured, and the pasted face
    still reads as smoother than the real one, as it does at 640x360."""
    scene = {kind: [Scene(pictures[kind], 1.0, crop=_head_and_shoulders(pictures["landmarks"]))]
             for kind in ("real", "fake")}
    for size in (SIZE, (1920, 1080)):
        noise_floor = {}
        for kind in ("real", "fake"):
            frame = Frame(0, 0.0, frame_at(scene[kind], 0.0, size), "interval")
            faces = _observations(detector, embedder, frame)
            face = max(faces, key=lambda f: float(f.bbox[2] - f.bbox[0]))
            whole, _ = _head_crop(frame.image, face.landmarks, max_pixels=10**9)
            bounded, _ = _head_crop(frame.image, face.landmarks, CONFIG.max_crop_pixels)
            assert bounded.shape[0] * bounded.shape[1] <= 1.01 * CONFIG.max_crop_pixels
            if size == (1920, 1080):
                assert whole.shape[0] * whole.shape[1] > 4 * CONFIG.max_crop_pixels
            forensics = FaceForensics(CONFIG)
            forensics.observe(frame, faces)
            [measured] = forensics.track_blending([Track(1, [face])])
            assert measured.faces == 1
            noise_floor[kind] = texture_differences(frame.image, face.landmarks, CONFIG.max_crop_pixels)[2]
        assert noise_floor["fake"] < noise_floor["real"] - 1.0, (size, noise_floor)


def _head_and_shoulders(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """A 16:9 window about six eye distances wide around the face."""
    centre = landmarks.mean(axis=0)
    half = 3.0 * float(np.linalg.norm(landmarks[1] - landmarks[0]))
    return centre[0] - half, centre[1] - half * 9 / 16, centre[0] + half, centre[1] + half * 9 / 16


def _observations(detector, embedder, frame: Frame) -> list[FaceObservation]:
    found = detector.detect(frame.image)
    crops = [align_face(frame.image, d.landmarks) for d in found]
    embeddings = embedder.embed(crops)
    quality = ScanConfig().quality
    return [FaceObservation(frame.t_s, frame.index, d.bbox, d.score, d.landmarks, e, assess(d, c, quality), c)
            for d, c, e in zip(found, crops, embeddings)]
