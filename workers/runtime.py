"""Builds the long-lived objects of a process (models, gallery) once from the settings."""
from __future__ import annotations

from pipeline.faces import FaceDetector, FaceEmbedder
from pipeline.frame_detectors import ClipProbeSignal, CustomOnnxSignal
from pipeline.image_embedder import AiImageProbe, ClipImageEmbedder
from pipeline.models import ModelName, available_providers, locate_model
from pipeline.scan import Scanner
from pipeline.synthetic import SyntheticAnalyzer
from gallery.enroll import Enroller
from gallery.gallery import Gallery
from gallery.store import GalleryStore
from workers.settings import Settings


class Runtime:
    """Models load lazily, once per process; a worker or CLI holds one Runtime."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._detector: FaceDetector | None = None
        self._embedder: FaceEmbedder | None = None
        self._scanner: Scanner | None = None
        self._gallery: Gallery | None = None

    def _path(self, name: ModelName):
        return self.settings.model_paths.get(name.value)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector.load(self.settings.scan.detection, self._path(ModelName.FACE_DETECTOR),
                                               self.settings.prefer_gpu)
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = FaceEmbedder.load(self.settings.scan.detection, self._path(ModelName.FACE_EMBEDDER),
                                               self.settings.prefer_gpu)
        return self._embedder

    @property
    def gallery(self) -> Gallery:
        if self._gallery is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            store = GalleryStore.open(self.settings.resolved_database_url())
            self._gallery = Gallery(self.settings.home, store, self.settings.index)
        return self._gallery

    @property
    def enroller(self) -> Enroller:
        return Enroller(self.detector, self.embedder, self.settings.scan.quality)

    @property
    def scanner(self) -> Scanner:
        if self._scanner is None:
            self._scanner = Scanner(self.detector, self.embedder, self.settings.scan,
                                    self._synthetic(), self.settings.policy)
        return self._scanner

    def _synthetic(self) -> SyntheticAnalyzer:
        settings = self.settings
        frame_signals = []
        if settings.image_probe:
            encoder = self._path(ModelName.IMAGE_EMBEDDER) or locate_model(ModelName.IMAGE_EMBEDDER)
            head = self._path(ModelName.AI_IMAGE_PROBE) or locate_model(ModelName.AI_IMAGE_PROBE)
            frame_signals.append(ClipProbeSignal(ClipImageEmbedder.from_path(encoder, available_providers(
                settings.prefer_gpu)), AiImageProbe.from_json(head)))
        if settings.custom_detector is not None:
            frame_signals.append(CustomOnnxSignal(settings.custom_detector))
        return SyntheticAnalyzer(settings.synthetic, frame_signals)
