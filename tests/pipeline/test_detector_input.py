"""The detector's input follows the picture's aspect: the same faces as the square letterbox, less input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.faces.detector import input_size


@pytest.mark.parametrize(("shape", "expected"), [((1080, 1920, 3), (640, 384)), ((1920, 1080, 3), (384, 640)),
                                                 ((480, 720, 3), (640, 448)), ((640, 640, 3), (640, 640)),
                                                 ((8, 4000, 3), (640, 32))])
def test_input_size_keeps_the_long_side_and_rounds_the_short_one_to_the_stride(shape, expected):
    assert input_size(shape, 640) == expected


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)])
def test_same_faces_as_the_square_letterbox(detector, photo, size):
    """A group photo framed as a landscape and as a portrait video frame."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    group = photo("players.jpg")
    scale = min(size[0] / group.shape[1], size[1] / group.shape[0])
    group = cv2.resize(group, (int(group.shape[1] * scale), int(group.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame[:group.shape[0], :group.shape[1]] = group
    fitted = detector.detect(frame)
    square, _ = detector._model.detect(frame, input_size=(640, 640))
    assert len(fitted) == len(square) >= 5
    for face in fitted:
        assert np.abs(square[:, :4] - face.bbox).max(axis=1).min() < 1.5
