"""The GPU check script's dry run on a machine without a GPU: every path runs on CPU and says so."""
from __future__ import annotations

import json

import onnxruntime as ort
import pytest

from benchmarks import gpu_check


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="a GPU build: run the real check")
def test_cpu_dry_run_reports_no_gpu_and_real_cpu_figures(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--cpu-dry-run", "--seconds", "0.5", "--vectors", "2000", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["gpu_found"] is False and "no GPU was found" in capsys.readouterr().err
    software = report["decode"]["software"]
    assert software["one"]["frames"] == 15 and not software["one"]["hwaccel"]
    assert software["keyframes"]["frames"] == 1, "a 0.5 s clip has one keyframe, alone decoded"
    assert "error" in report["decode"]["cuda"], "without a device the CUDA decoder must say why it did not run"
    models = report["models"]
    assert models["provider"] == "CPUExecutionProvider" and models["detector"]["per_s"] > 0
    assert models["embedder_batch"]["batch"] == 16 and models["embedder_batch"]["per_s"] > 0
    assert report["estimate"]["scan_x_realtime_bound_whole_decode"] > 0
    assert report["faiss"]["gpu_available"] is False and report["faiss"]["cpu_flat_s"] > 0


def test_without_dry_run_a_missing_gpu_fails_loudly(tmp_path, capsys):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a GPU build: the real check runs instead")
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--seconds", "0.5", "--vectors", "2000", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "GPU CHECK FAILED" in err and "onnxruntime has no CUDA provider" in err
    assert "error" in json.loads(out.read_text())["models"]
