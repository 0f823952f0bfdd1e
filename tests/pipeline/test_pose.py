"""Head pose in degrees on real package photos: frontal reads frontal, a three-quarter face reads
three-quarter (where the old 5-point ratio read a profile), mirroring flips the sign, and quality
weighs turned and blurred faces instead of dropping them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.config import QualityConfig, ReferenceQualityConfig
from pipeline.faces.align import align_face
from pipeline.faces.pose import PoseEstimator, pose_from_5_points
from pipeline.faces.quality import assess, frontal_ratio, reference_problem, sharpness


@pytest.fixture(scope="module")
def estimator() -> PoseEstimator:
    return PoseEstimator.load(prefer_gpu=False)


def _face_at(detector, image, centre):
    """The detected face whose box holds `centre` (x, y): a face chosen by looking at the photo."""
    found = [d for d in detector.detect(image)
             if d.bbox[0] <= centre[0] <= d.bbox[2] and d.bbox[1] <= centre[1] <= d.bbox[3]]
    assert len(found) == 1, f"{len(found)} faces at {centre}"
    return found[0]


def test_frontal_and_three_quarter_faces_read_as_such(detector, estimator, photo):
    yao = photo("yaoming.jpg")
    frontal = max(detector.detect(yao), key=lambda d: d.score)
    pose = estimator.estimate(yao, frontal.bbox, frontal.landmarks)
    assert pose.method == "106" and abs(pose.yaw) < 15 and abs(pose.pitch) < 15

    gdp = photo("gdp.jpg")
    turned = _face_at(detector, gdp, (297, 105))  # the man third from the left, turned toward image right
    pose = estimator.estimate(gdp, turned.bbox, turned.landmarks)
    assert 30 <= pose.yaw <= 55, pose
    assert abs(frontal_ratio(turned.landmarks)[0]) >= 0.99  # the old ratio saturates: it read a profile
    assert 25 <= pose_from_5_points(turned.bbox, turned.landmarks).yaw <= 60


def test_mirroring_flips_yaw_and_keeps_pitch(detector, estimator, photo):
    gdp = photo("gdp.jpg")
    mirrored = np.ascontiguousarray(gdp[:, ::-1])
    turned = _face_at(detector, gdp, (297, 105))
    twin = _face_at(detector, mirrored, (gdp.shape[1] - 1 - 297, 105))
    pose = estimator.estimate(gdp, turned.bbox, turned.landmarks)
    mirror = estimator.estimate(mirrored, twin.bbox, twin.landmarks)
    assert np.sign(pose.yaw) == -np.sign(mirror.yaw)
    assert abs(pose.yaw + mirror.yaw) < 8 and abs(pose.pitch - mirror.pitch) < 8


def test_small_faces_fall_back_to_the_five_point_fit(estimator, detector, photo):
    yao = photo("yaoming.jpg")
    small = cv2.resize(yao, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    face = max(detector.detect(cv2.copyMakeBorder(small, 80, 80, 80, 80, cv2.BORDER_REPLICATE)), key=lambda d: d.score)
    padded = cv2.copyMakeBorder(small, 80, 80, 80, 80, cv2.BORDER_REPLICATE)
    assert estimator.estimate(padded, face.bbox, face.landmarks).method == "5pt"


def test_turned_and_blurred_faces_weigh_less_but_still_count(detector, photo):
    config = QualityConfig()
    gdp = photo("gdp.jpg")
    turned = _face_at(detector, gdp, (297, 105))
    quality = assess(turned, align_face(gdp, turned.landmarks), config)
    assert quality.usable and quality.band in ("three_quarter", "profile") and quality.weight < 0.9

    yao = photo("yaoming.jpg")
    blurred = cv2.GaussianBlur(yao, (0, 0), 6)
    face = max(detector.detect(blurred), key=lambda d: d.score)
    crop = align_face(blurred, face.landmarks)
    quality = assess(face, crop, config)
    assert quality.usable and quality.band == "blurred" and 0 < quality.weight < 1
    sharp = max(detector.detect(yao), key=lambda d: d.score)
    assert assess(sharp, align_face(yao, sharp.landmarks), config).weight > quality.weight


def test_references_accept_three_quarter_views_and_refuse_blur(detector, estimator, photo):
    config = ReferenceQualityConfig()
    gdp = photo("gdp.jpg")
    turned = _face_at(detector, gdp, (297, 105))
    crop = align_face(gdp, turned.landmarks)
    size = float(min(turned.bbox[2] - turned.bbox[0], turned.bbox[3] - turned.bbox[1]))
    pose = estimator.estimate(gdp, turned.bbox, turned.landmarks)
    assert reference_problem(size, turned.score, sharpness(crop), pose, config) is None

    yao = photo("yaoming.jpg")
    blurred = cv2.GaussianBlur(yao, (0, 0), 6)
    face = max(detector.detect(blurred), key=lambda d: d.score)
    pose = estimator.estimate(blurred, face.bbox, face.landmarks)
    size = float(min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]))
    problem = reference_problem(size, face.score, sharpness(align_face(blurred, face.landmarks)), pose, config)
    assert problem is not None and "blurred" in problem
    profile = pose.__class__(yaw=70.0, pitch=0.0, roll=0.0, method="106", residual=0.02)
    assert "profile" in reference_problem(200.0, 0.9, 300.0, profile, config)
