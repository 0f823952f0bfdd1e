"""One short check of every GPU path, for a lent GPU machine: figures land in benchmarks/results/.

1. Hardware decoding through PyAV (FFmpeg's CUDA device, NVDEC): frames per second against the
   software decoder on the same 1080p H.264 clip, or the error FFmpeg gave for why not.
2. The detector on onnxruntime's CUDA provider, asked for CUDA alone: a session that is not on
   CUDA fails loudly (onnxruntime otherwise falls back to CPU without a word).
3. faiss on the GPU (gallery/index/gpu.py): an exact search over a large gallery of random unit
   vectors, against the CPU flat index.
From the decode and detection rates it estimates how many seconds of 1080p video one GPU scans
per second at the default sampling (the issue's aim: 300).

    python -m benchmarks.gpu_check               # on a GPU machine; exit 1 when a GPU path fails
    python -m benchmarks.gpu_check --cpu-dry-run # the same code paths on CPU; reports no GPU found

Depends only on PyAV, onnxruntime, faiss and the packaged detector model: it builds its own clip.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
from av.codec.hwaccel import HWAccel, hwdevices_available

from gallery.index.gpu import GpuExactSearch, gpu_available
from pipeline.config import DetectionConfig, SamplingConfig
from pipeline.faces.detector import input_shape
from pipeline.models import ModelName, locate_model, session_options

RESULTS = Path("benchmarks/results")
CUDA = "CUDAExecutionProvider"


class GpuPathError(RuntimeError):
    """A GPU path that was asked for did not run on the GPU."""


def make_clip(path: Path, seconds: float, size: tuple[int, int] = (1920, 1080), fps: int = 30) -> Path:
    """A moving gradient with drifting blocks: enough motion that the decoder does real work."""
    width, height = size
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            base = ((xs + ys + 4 * i) % 256).astype(np.uint8)
            picture = np.stack([base, np.roll(base, 7 * i, axis=1), np.roll(base, 5 * i, axis=0)], axis=2)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        out.mux(stream.encode(None))
    return path


def decode_rate(path: Path, hwaccel: HWAccel | None) -> dict:
    """Frames per second of a full decode, each frame brought to host memory as BGR (what the scan uses)."""
    started = time.perf_counter()
    with av.open(str(path), hwaccel=hwaccel) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            frames += 1
        on_device = bool(stream.codec_context.is_hwaccel)
    seconds = time.perf_counter() - started
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 1), "hwaccel": on_device}


def check_decode(path: Path, dry_run: bool) -> dict:
    result: dict = {"ffmpeg_device_types": hwdevices_available(), "software": decode_rate(path, None)}
    if "cuda" not in result["ffmpeg_device_types"]:
        result["cuda"] = {"error": "this FFmpeg build has no CUDA device type"}
    else:
        try:
            result["cuda"] = decode_rate(path, HWAccel("cuda", allow_software_fallback=False))
            if not result["cuda"]["hwaccel"]:
                result["cuda"]["error"] = "the decoder did not attach the CUDA device"
        except (av.error.FFmpegError, OSError) as exc:  # FFmpeg's EPERM without a driver is a PermissionError
            result["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
    if not dry_run and "error" in result["cuda"]:
        raise GpuPathError(f"hardware decoding failed: {result['cuda']['error']}")
    return result


def detector_session(providers: list[str]) -> ort.InferenceSession:
    """The packaged SCRFD detector on exactly `providers`; refuses a session that fell back to CPU."""
    session = ort.InferenceSession(str(locate_model(ModelName.FACE_DETECTOR)), sess_options=session_options(),
                                   providers=providers)
    used = session.get_providers()
    if providers[0] == CUDA and used[0] != CUDA:
        raise GpuPathError(f"onnxruntime put the detector on {used} instead of CUDA (available: "
                           f"{ort.get_available_providers()}): install onnxruntime-gpu matching the CUDA driver")
    return session


def detect_rate(session: ort.InferenceSession, batches: int = 20) -> dict:
    """Detector forward passes per second on a 1080p frame's input (640x384, as the scan sizes it)."""
    name = session.get_inputs()[0].name
    width, height = input_shape(1080, 1920, DetectionConfig().input_size)
    blob = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    session.run(None, {name: blob})  # warm-up: CUDA kernels compile on the first call
    started = time.perf_counter()
    for _ in range(batches):
        session.run(None, {name: blob})
    seconds = time.perf_counter() - started
    return {"provider": session.get_providers()[0], "frames": batches, "fps": round(batches / seconds, 1)}


def check_detector(dry_run: bool) -> dict:
    available = ort.get_available_providers()
    if CUDA in available:
        return {"available": available, **detect_rate(detector_session([CUDA]))}
    if not dry_run:
        raise GpuPathError(f"onnxruntime has no CUDA provider (available: {available}): install onnxruntime-gpu")
    return {"available": available, "cuda": f"not available in this onnxruntime build ({ort.__version__})",
            **detect_rate(detector_session(["CPUExecutionProvider"]), batches=5)}


def _timed_rows(search: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """The rows a search found and the seconds it took."""
    started = time.perf_counter()
    _, rows = search()
    return rows, time.perf_counter() - started


def check_faiss(dry_run: bool, vectors: int) -> dict:
    import faiss

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((vectors, 512), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    queries = matrix[:256] + 0.01 * rng.standard_normal((256, 512), dtype=np.float32)
    cpu = faiss.IndexFlatIP(512)
    cpu.add(matrix)
    cpu_rows, cpu_s = _timed_rows(lambda: cpu.search(queries, 10))
    result: dict = {"vectors": vectors, "queries": len(queries), "cpu_flat_s": round(cpu_s, 3),
                    "gpu_available": gpu_available()}
    if not result["gpu_available"]:
        why = "faiss build without GPU support" if not hasattr(faiss, "StandardGpuResources") else "no GPU visible"
        if not dry_run:
            raise GpuPathError(f"faiss cannot search on a GPU: {why} (install faiss-gpu)")
        result["gpu"] = why
        return result
    search = GpuExactSearch(512)
    search.search(matrix, 0, queries[:1], 10)  # upload once
    gpu_rows, gpu_s = _timed_rows(lambda: search.search(matrix, 0, queries, 10))
    result.update(gpu_flat_s=round(gpu_s, 4), same_top1=float(np.mean(gpu_rows[:, 0] == cpu_rows[:, 0])))
    return result


def estimate(decode: dict, detector: dict, fps: float) -> dict:
    """Seconds of 1080p video per second for one GPU: decoding every frame, detecting the default samples."""
    sampling = SamplingConfig()
    decoder = decode.get("cuda", {}).get("fps") or decode["software"]["fps"]
    samples_per_video_s = 1.0 / sampling.interval_s
    return {"decode_x_realtime": round(decoder / fps, 1),
            "detect_x_realtime": round(detector["fps"] / samples_per_video_s, 1),
            "scan_x_realtime_bound": round(min(decoder / fps, detector["fps"] / samples_per_video_s), 1),
            "aim": 300}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-dry-run", action="store_true", help="run every path on CPU; report no GPU found")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 20 on GPU, 2 dry)")
    parser.add_argument("--vectors", type=int, default=None, help="gallery size (default 2,000,000 on GPU, 20,000 dry)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    dry = args.cpu_dry_run
    seconds = args.seconds or (2.0 if dry else 20.0)
    vectors = args.vectors or (20_000 if dry else 2_000_000)
    out = args.out or RESULTS / ("gpu_check.cpu_dry_run.json" if dry else "gpu_check.json")
    clip = make_clip(Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-check-{os.getpid()}.mp4", seconds)
    report: dict = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "mode": "cpu dry run" if dry else "gpu", "machine": {"cpus": os.cpu_count(),
                                                                         "processor": platform.processor()},
                    "clip": {"size": [1920, 1080], "fps": 30, "seconds": seconds}}
    failures = []
    for name, check in (("decode", lambda: check_decode(clip, dry)), ("detector", lambda: check_detector(dry)),
                        ("faiss", lambda: check_faiss(dry, vectors))):
        try:
            report[name] = check()
        except GpuPathError as exc:
            report[name] = {"error": str(exc)}
            failures.append(f"{name}: {exc}")
    clip.unlink(missing_ok=True)
    if "software" in report["decode"] and "fps" in report["detector"]:
        report["estimate"] = estimate(report["decode"], report["detector"], 30.0)
    gpu_seen = (report["decode"].get("cuda", {}).get("hwaccel", False) or report["detector"].get("provider") == CUDA
                or report["faiss"].get("gpu_available", False))
    report["gpu_found"] = bool(gpu_seen)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if failures:
        print("GPU CHECK FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if dry and not gpu_seen:
        print("cpu dry run: no GPU was found; every path ran on CPU", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
