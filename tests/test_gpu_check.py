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


def test_the_products_scan_is_timed_in_worker_processes(tmp_path):
    """--scan runs the product's whole scan in spawned workers that start their timed scan together."""
    import cv2

    from samples.clips import Scene, encode_video
    from samples.photos import package_photo

    clip = encode_video(tmp_path / "yao.mp4", [Scene(cv2.imread(str(package_photo("yaoming.jpg"))), 3.0, "pan")],
                        size=(1280, 720), fps=25, crf=23, preset="veryfast")
    out = tmp_path / "scan.json"
    assert gpu_check.main(["--cpu-dry-run", "--checks", "--scan", str(clip), "--workers", "1", "--out", str(out)]) == 0
    scan = json.loads(out.read_text())["scans"][0]
    assert scan["workers"] == 1 and scan["duration_s"] == 3.0 and scan["x_realtime"] > 0
    assert scan["tracks"] == 1 and scan["frames_decoded"] > 0, "the scan followed the one face on screen"
    cuda = "CUDAExecutionProvider"
    assert (cuda if cuda in ort.get_available_providers() else "CPUExecutionProvider") in scan["providers"]
