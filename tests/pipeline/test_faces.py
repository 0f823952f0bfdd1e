"""Detection, alignment, quality and embeddings on real photos with the real weights."""
from __future__ import annotations

import itertools

import cv2
import numpy as np

from gallery.enroll import pad_for_detection
from pipeline.config import MatchConfig, QualityConfig
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess, pose_from_landmarks
from tests.media import dlib_johns

YAO_MING_IN_PLAYERS = np.array([742.0, 167.0])  # player #13


def _faces(detector, embedder, image, quality=QualityConfig()):
    detections = detector.detect(image)
    crops = [align_face(image, d.landmarks) for d in detections]
    qualities = [assess(d, c, quality) for d, c in zip(detections, crops)]
    return detections, qualities, embedder.embed(crops)


def test_detects_the_team_and_keeps_reasons_for_small_faces(detector, embedder, photo):
    detections, qualities, embeddings = _faces(detector, embedder, photo("players.jpg"))
    usable = [q for q in qualities if q.usable]
    assert len(detections) >= 18
    assert len(usable) >= 14
    assert all(q.reason and "too small" in q.reason for q in qualities if not q.usable and q.size_px < 36)
    assert embeddings.shape == (len(detections), 512)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


def test_yao_ming_is_found_in_players_and_nobody_else_matches(detector, embedder, photo):
    match = MatchConfig()
    _, _, reference = _faces(detector, embedder, photo("yaoming.jpg"))
    assert reference.shape[0] == 1
    detections, qualities, embeddings = _faces(detector, embedder, photo("players.jpg"))
    sims = embeddings @ reference[0]
    centres = np.array([(d.bbox[:2] + d.bbox[2:]) / 2 for d in detections])
    yao = int(np.argmin(np.linalg.norm(centres - YAO_MING_IN_PLAYERS, axis=1)))
    assert qualities[yao].usable
    assert sims[yao] >= match.threshold
    others = np.delete(sims, yao)
    assert others.max() < match.review_threshold
    assert int(np.argmax(sims)) == yao


def test_same_and_different_people_separate_at_the_threshold(detector, embedder):
    """dlib's 5 people x 11 photos: every genuine pair above, every impostor pair below."""
    match = MatchConfig()
    labelled = []
    for person, paths in dlib_johns().items():
        for path in paths:
            image = pad_for_detection(cv2.imread(str(path)))
            detections, qualities, embeddings = _faces(detector, embedder, image)
            best = max(range(len(detections)), key=lambda i: detections[i].score)
            if qualities[best].usable:
                labelled.append((person, embeddings[best]))
    assert len(labelled) >= 50
    genuine, impostor = [], []
    for (pa, ea), (pb, eb) in itertools.combinations(labelled, 2):
        (genuine if pa == pb else impostor).append(float(ea @ eb))
    assert min(genuine) >= match.threshold
    assert max(impostor) < match.threshold
    assert np.mean(np.array(genuine) >= match.threshold) == 1.0
    assert np.median(genuine) - np.median(impostor) > 0.5


def test_pose_estimate_flags_profiles(detector, photo):
    frontal = max(detector.detect(photo("yaoming.jpg")), key=lambda d: d.score)
    yaw, pitch = pose_from_landmarks(frontal.landmarks)
    assert abs(yaw) < 0.3 and abs(pitch) < 0.4
    profile = frontal.landmarks.copy()
    profile[2, 0] = profile[1, 0] + 5.0  # nose past the right eye: a profile
    yaw, _ = pose_from_landmarks(profile)
    assert abs(yaw) > QualityConfig().max_yaw


def test_blurred_face_is_unusable_with_reason(detector, photo):
    image = photo("yaoming.jpg")
    blurred = cv2.GaussianBlur(image, (0, 0), 6)
    detections = detector.detect(blurred)
    assert detections, "a blurred face is still detected"
    quality = assess(detections[0], align_face(blurred, detections[0].landmarks), QualityConfig())
    assert not quality.usable
    assert "blurred" in quality.reason
