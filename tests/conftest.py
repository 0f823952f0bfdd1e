"""Shared fixtures: real models loaded once per test session, real photos, a private home."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import ScanConfig
from pipeline.faces.detector import FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.scan import Scanner
from pipeline.synthetic.analyzer import SyntheticAnalyzer
from samples.photos import package_photo
from workers.runtime import Runtime
from workers.settings import Settings


@pytest.fixture(scope="session")
def scan_config() -> ScanConfig:
    return ScanConfig()


@pytest.fixture(scope="session")
def detector(scan_config) -> FaceDetector:
    return FaceDetector.load(scan_config.detection, prefer_gpu=False)


@pytest.fixture(scope="session")
def embedder(scan_config) -> FaceEmbedder:
    return FaceEmbedder.load(scan_config.detection, prefer_gpu=False)


@pytest.fixture(scope="session")
def photo():
    def load(name: str) -> np.ndarray:
        image = cv2.imread(str(package_photo(name)))
        assert image is not None, name
        return image
    return load


_SHARED_ANALYZER: list[SyntheticAnalyzer] = []


def make_runtime(home: Path, detector: FaceDetector, embedder: FaceEmbedder, **overrides) -> Runtime:
    """A Runtime on its own home directory that reuses the session's loaded models (the CLIP
    probe included, when no setting is overridden)."""
    runtime = Runtime(Settings(home=home, database_url=None, **overrides))
    runtime._detector, runtime._embedder = detector, embedder
    if not overrides:
        if not _SHARED_ANALYZER:
            _SHARED_ANALYZER.append(runtime._synthetic())
        runtime._scanner = Scanner(detector, embedder, runtime.settings.scan, _SHARED_ANALYZER[0],
                                   runtime.settings.policy)
    return runtime


@pytest.fixture
def runtime(tmp_path, detector, embedder) -> Runtime:
    return make_runtime(tmp_path / "home", detector, embedder)
