"""The one configuration object (env prefix LIKENESS_, nested with __), built once and passed down."""
from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gallery.index.config import IndexConfig
from pipeline.characters import CharacterConfig
from pipeline.config import ScanConfig
from pipeline.synthetic.face_forensics import FaceForensicsConfig
from pipeline.synthetic.face_swap import FaceSwapConfig
from pipeline.synthetic.frame_detectors import CustomDetectorConfig
from pipeline.synthetic.onscreen import OnScreenConfig
from pipeline.policy import PolicyConfig
from workers.scans.ladder import LadderConfig
from pipeline.synthetic.analyzer import SyntheticConfig
from workers.service_config import ServiceConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIKENESS_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=lambda: Path(user_data_dir("likeness")),
                       description="Where the gallery, reference copies and results live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under home.")
    redis_url: str | None = Field(None, description="Celery broker/result backend and gallery-version signal.")
    prefer_gpu: bool = Field(True, description="Use onnxruntime's CUDA provider when present.")
    require_gpu: bool = Field(False, description="Refuse to scan when a model would run on the CPU although a GPU "
                              "was expected (onnxruntime falls back to CPU when CUDA or cuDNN fails to load).")
    image_probe: bool = Field(True, description="Run the CLIP AI-image probe (weak signal, ~0.1 s per kept frame).")
    custom_detector: CustomDetectorConfig | None = Field(
        None, description="An operator's own frame-level AI detector (ONNX + preprocessing), fused as a signal.")
    model_paths: dict[str, Path] = Field(default_factory=dict,
                                         description="Override a model file: {model name: path}.")
    scan: ScanConfig = ScanConfig()
    policy: PolicyConfig = PolicyConfig()
    ladder: LadderConfig = Field(default_factory=LadderConfig, description="The account ladder: uploader "
                                 "history → none / warn / restrict_distribution / suspend (workers/scans/ladder.py).")
    synthetic: SyntheticConfig = SyntheticConfig()
    forensics: FaceForensicsConfig = FaceForensicsConfig()
    face_swap: FaceSwapConfig = FaceSwapConfig()
    onscreen: OnScreenConfig = OnScreenConfig()
    characters: CharacterConfig = CharacterConfig()
    index: IndexConfig = IndexConfig()
    service: ServiceConfig = ServiceConfig()

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'likeness.db'}"
