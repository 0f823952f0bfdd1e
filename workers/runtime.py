"""Builds the long-lived objects of a process (models, gallery) once from the settings."""
from __future__ import annotations

from pipeline.characters import CharacterConfig, CharacterMatcher
from pipeline.faces.detector import FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.pose import PoseEstimator
from pipeline.synthetic.face_forensics import FaceForensics
from pipeline.synthetic.face_swap import FaceSwapProbe, FaceSwapSignal
from pipeline.synthetic.frame_detectors import ClipProbeSignal, CustomOnnxSignal
from pipeline.synthetic.onscreen import OnScreenTextSignal
from pipeline.onscreen.ocr import OcrEngine
from pipeline.image_embedder import AiImageProbe, ClipImageEmbedder
from pipeline.models import ModelName, available_providers, locate_model, require_gpu
from pipeline.scan import Scanner
from pipeline.synthetic.analyzer import CombinedFaceSignals, SyntheticAnalyzer
from gallery.characters import CharacterEnroller
from gallery.enroll import Enroller
from gallery.gallery import CharacterGallery, Gallery
from gallery.store import GalleryStore
from workers.data import migrate
from workers.settings import Settings


class Runtime:
    """Models load lazily, once per process; a worker or CLI holds one Runtime."""

    def __init__(self, settings: Settings, characters: CharacterConfig | None = None):
        self.settings = settings
        self.character_config = characters or settings.characters
        self._detector: FaceDetector | None = None
        self._embedder: FaceEmbedder | None = None
        self._scanner: Scanner | None = None
        self._gallery: Gallery | None = None
        self._pose: PoseEstimator | None = None
        self._character_gallery: CharacterGallery | None = None
        self._image_embedder: ClipImageEmbedder | None = None

    def _on_gpu_if_required(self, name: ModelName, provider: str) -> None:
        if self.settings.require_gpu:
            require_gpu(name, provider)

    def _path(self, name: ModelName):
        """Every model file goes through the registry: the user's override (its hash logged) or the packaged
        file, checked against its pinned hash."""
        return locate_model(name, self.settings.model_paths)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            detector = FaceDetector.load(self.settings.scan.detection, self._path(ModelName.FACE_DETECTOR),
                                         self.settings.prefer_gpu)
            self._on_gpu_if_required(ModelName.FACE_DETECTOR, detector.provider)
            self._detector = detector
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            embedder = FaceEmbedder.load(self.settings.scan.detection, self._path(ModelName.FACE_EMBEDDER),
                                         self.settings.prefer_gpu)
            self._on_gpu_if_required(ModelName.FACE_EMBEDDER, embedder.provider)
            self._embedder = embedder
        return self._embedder

    @property
    def gallery(self) -> Gallery:
        """The face gallery, on a database first brought to the newest schema (a home made by an
        earlier release is upgraded in place, its data kept), through this process's engine."""
        if self._gallery is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            url = self.settings.resolved_database_url()
            migrate.upgrade(url)
            self._gallery = Gallery(self.settings.home, GalleryStore.open(url), self.settings.index)
        return self._gallery

    @property
    def pose(self) -> PoseEstimator:
        """The 106-point head-pose fit: only reference photos need it (scan faces use the 5-point fit)."""
        if self._pose is None:
            self._pose = PoseEstimator.load(self._path(ModelName.FACE_LANDMARKS), self.settings.prefer_gpu,
                                            self.settings.scan.detection.threads)
        return self._pose

    @property
    def enroller(self) -> Enroller:
        return Enroller(self.detector, self.embedder, self.pose, self.settings.scan.references)

    @property
    def character_gallery(self) -> CharacterGallery:
        """The character index, on the face gallery's database and home."""
        if self._character_gallery is None:
            self._character_gallery = CharacterGallery(self.settings.home, self.gallery.store, self.settings.index)
        return self._character_gallery

    @property
    def image_embedder(self) -> ClipImageEmbedder:
        """CLIP with float activations, for similarity (the AI-image probe keeps its own int8 one)."""
        if self._image_embedder is None:
            self._image_embedder = ClipImageEmbedder.from_path(
                self._path(ModelName.IMAGE_EMBEDDER), available_providers(self.settings.prefer_gpu),
                float_activations=True)
        return self._image_embedder

    @property
    def character_enroller(self) -> CharacterEnroller:
        return CharacterEnroller(self.detector, self.image_embedder, self.character_config)

    @property
    def scanner(self) -> Scanner:
        if self._scanner is None:
            self._scanner = Scanner(self.detector, self.embedder, self.settings.scan,
                                    self._synthetic(), self.settings.policy, self.character_matcher())
        return self._scanner

    def character_matcher(self) -> CharacterMatcher:
        """The scan's character path; it loads CLIP on the first scan with a character registered."""
        return CharacterMatcher(lambda: self.image_embedder, self.character_gallery, self.character_config)

    def _synthetic(self) -> SyntheticAnalyzer:
        """Frame- and face-level detectors; the AI-image probe and the face-swap probe share one
        int8 CLIP session (both were fitted on its embeddings)."""
        settings = self.settings
        clip = None
        if settings.image_probe or settings.face_swap.enabled:
            encoder = locate_model(ModelName.IMAGE_EMBEDDER, settings.model_paths)
            clip = ClipImageEmbedder.from_path(encoder, available_providers(settings.prefer_gpu))
        frame_signals = []
        if settings.image_probe:
            head = locate_model(ModelName.AI_IMAGE_PROBE, settings.model_paths)
            frame_signals.append(ClipProbeSignal(clip, AiImageProbe.from_json(head)))
        if settings.custom_detector is not None:
            frame_signals.append(CustomOnnxSignal(settings.custom_detector))
        if settings.onscreen.enabled:  # generator marks and AI labels read on screen (PP-OCRv5)
            ocr = OcrEngine.load(settings.onscreen.det_max_side, settings.scan.detection.threads,
                                 settings.prefer_gpu, settings.model_paths)
            frame_signals.append(OnScreenTextSignal(ocr, settings.onscreen))
        swap_probe = None
        if settings.face_swap.enabled:
            swap_probe = FaceSwapProbe.from_json(locate_model(ModelName.FACE_SWAP_PROBE, settings.model_paths))

        def face_signals() -> CombinedFaceSignals:
            parts = [FaceForensics(settings.forensics)]
            if swap_probe is not None:
                parts.append(FaceSwapSignal(clip, swap_probe, settings.face_swap))
            return CombinedFaceSignals(parts)

        return SyntheticAnalyzer(settings.synthetic, frame_signals, face_signals_factory=face_signals)
