"""Model files: every packaged file is checked against its pinned SHA-256 once per process; a
corrupted or replaced one is refused with what to do; a user's own file is accepted as is."""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest

from pipeline import models
from pipeline.models import (
    PACKAGED,
    ModelIntegrityError,
    ModelName,
    ModelNotFoundError,
    file_sha256,
    locate_model,
)

FAKE_PACKAGE = "likeness_fake_model_package"


@pytest.fixture
def fresh_checks(monkeypatch):
    """Forget which files this process already checked, for this test only."""
    monkeypatch.setattr(models, "_verified", set())
    monkeypatch.setattr(models, "_overrides_logged", set())


@pytest.fixture
def fake_package(tmp_path, monkeypatch, fresh_checks):
    """Point a model at an importable package of our own in tmp_path; returns a function that puts a
    file there as that model's packaged file (a copy of the real one, optionally corrupted)."""
    root = tmp_path / "site"
    package = root / FAKE_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(root))

    def install(name: ModelName, corrupt: bool) -> Path:
        real = locate_model(name)
        packaged = PACKAGED[name]
        monkeypatch.setitem(PACKAGED, name, dataclasses.replace(packaged, package=FAKE_PACKAGE))
        target = package / packaged.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, target)
        if corrupt:
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0x01  # one bit, in the middle of the weights
            target.write_bytes(bytes(data))
        return target

    return install


@pytest.mark.parametrize("name", list(ModelName))
def test_installed_files_match_their_pins(name, fresh_checks):
    path = locate_model(name)
    assert path.is_file()
    assert file_sha256(path) == PACKAGED[name].sha256


@pytest.mark.parametrize("name", [ModelName.FACE_DETECTOR, ModelName.AI_IMAGE_PROBE])
def test_a_corrupted_packaged_file_is_refused_with_what_to_do(name, fake_package):
    target = fake_package(name, corrupt=True)
    with pytest.raises(ModelIntegrityError) as raised:
        locate_model(name)
    message = str(raised.value)
    assert str(target) in message
    assert PACKAGED[name].sha256 in message                # expected
    assert file_sha256(target) in message                  # found
    assert "Reinstall" in message and PACKAGED[name].distribution in message
    assert "LIKENESS_MODEL_PATHS" in message
    assert isinstance(raised.value, ModelNotFoundError)    # callers handling a missing model handle this too


def test_an_intact_copy_in_another_package_dir_verifies(fake_package):
    target = fake_package(ModelName.FACE_DETECTOR, corrupt=False)
    assert locate_model(ModelName.FACE_DETECTOR) == target


def test_the_detector_refuses_a_corrupted_file_at_load(fake_package):
    from pipeline.config import DetectionConfig
    from pipeline.faces.detector import FaceDetector

    fake_package(ModelName.FACE_DETECTOR, corrupt=True)
    with pytest.raises(ModelIntegrityError, match="scrfd_500m_bnkps.onnx"):
        FaceDetector.load(DetectionConfig(), prefer_gpu=False)


def test_a_missing_packaged_file_names_the_file_and_the_remedy(fake_package, monkeypatch):
    name = ModelName.AI_IMAGE_PROBE
    fake_package(name, corrupt=False).unlink()
    with pytest.raises(ModelNotFoundError) as raised:
        locate_model(name)
    assert "clip_head.json" in str(raised.value) and "LIKENESS_MODEL_PATHS" in str(raised.value)


def test_a_missing_package_names_the_remedy(monkeypatch, fresh_checks):
    name = ModelName.FACE_EMBEDDER
    monkeypatch.setitem(PACKAGED, name, dataclasses.replace(PACKAGED[name], package="likeness_no_such_package"))
    with pytest.raises(ModelNotFoundError, match="not installed.*Reinstall"):
        locate_model(name)


def test_each_file_is_hashed_once_per_process(fake_package, monkeypatch):
    name = ModelName.AI_IMAGE_PROBE
    fake_package(name, corrupt=False)
    hashed = []
    real_hash = models.file_sha256
    monkeypatch.setattr(models, "file_sha256", lambda path: hashed.append(path) or real_hash(path))
    for _ in range(3):
        locate_model(name)
    assert len(hashed) == 1


def test_a_file_changed_after_its_check_is_checked_again(fake_package):
    name = ModelName.AI_IMAGE_PROBE
    target = fake_package(name, corrupt=False)
    locate_model(name)
    target.write_bytes(target.read_bytes() + b" ")
    with pytest.raises(ModelIntegrityError):
        locate_model(name)


def test_a_users_own_file_has_no_pin_and_is_accepted(tmp_path, fresh_checks, caplog):
    own = tmp_path / "my_detector.onnx"
    data = bytearray(locate_model(ModelName.FACE_DETECTOR).read_bytes())
    data[100] ^= 0xFF
    own.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="pipeline.models"):
        assert locate_model(ModelName.FACE_DETECTOR, {"face_detector": own}) == own
    assert file_sha256(own) in caplog.text


def test_a_missing_users_file_is_refused(tmp_path, fresh_checks):
    with pytest.raises(ModelNotFoundError, match="LIKENESS_MODEL_PATHS"):
        locate_model(ModelName.FACE_DETECTOR, {"face_detector": tmp_path / "absent.onnx"})


CPU_ONLY = pytest.mark.skipif(models.CUDA_PROVIDER in models.ort.get_available_providers(),
                              reason="onnxruntime-gpu here: the detector may really run on CUDA")


@CPU_ONLY
def test_a_session_that_asked_for_cuda_and_got_the_cpu_is_warned_about(caplog):
    """onnxruntime keeps a session whose CUDA provider failed on the CPU with only its own log line."""
    import onnxruntime as ort

    path = locate_model(ModelName.FACE_DETECTOR)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="pipeline.models"):
        models.log_session(ModelName.FACE_DETECTOR, path, session, [models.CUDA_PROVIDER, "CPUExecutionProvider"])
        models.log_session(ModelName.FACE_DETECTOR, path, session, ["CPUExecutionProvider"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "only the session that asked for CUDA is warned about, not one on the CPU by choice"
    assert "face_detector asked for onnxruntime's CUDA provider but runs on CPUExecutionProvider" in warnings[0].message


@CPU_ONLY
def test_a_worker_that_requires_the_gpu_refuses_to_scan_on_the_cpu(tmp_path):
    from workers.runtime import Runtime
    from workers.settings import Settings

    with pytest.raises(models.GpuFallbackError, match="face_detector runs on CPUExecutionProvider, not on the GPU"):
        _ = Runtime(Settings(home=tmp_path, require_gpu=True)).detector
    assert Runtime(Settings(home=tmp_path)).detector.provider == "CPUExecutionProvider", "without it the CPU is fine"
