"""One short check of every GPU path, for a lent GPU machine: figures land in benchmarks/results/.

1. Hardware decoding through PyAV (FFmpeg's CUDA device, NVDEC): frames per second against the
   software decoder on the same 1080p H.264 clip (a keyframe a second, as phones record), for one
   decoder and for several at once, every frame and keyframes alone (what keyframe-first decodes),
   or the error FFmpeg gave for why not.
2. The detector and the face embedder on onnxruntime's CUDA provider, asked for CUDA alone: a
   session that is not on CUDA fails loudly (onnxruntime otherwise falls back to CPU without a word).
3. faiss on the GPU (gallery/index/gpu.py): an exact search over a large gallery of random unit
   vectors, against the CPU flat index; a faiss without GPU support is reported with its reason.
From the decode and inference rates it bounds how many seconds of 1080p video one machine scans
per second at the default sampling (the issue's aim: 300), for uploads that must be decoded whole
and for uploads that keyframe-first can sample from their keyframes. `--scan UPLOAD` also times the
product's whole scan of an upload, one process per core scanning it at once.

    python -m benchmarks.gpu_check               # on a GPU machine; exit 1 when a GPU path fails
    python -m benchmarks.gpu_check --cpu-dry-run # the same code paths on CPU; reports no GPU found

Depends only on PyAV, onnxruntime, pydantic, insightface and the packaged face models (faiss is
optional and reported when missing): it builds its own clip.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
from av.codec.hwaccel import HWAccel, hwdevices_available

from pipeline.config import DetectionConfig, SamplingConfig
from pipeline.faces.detector import input_shape
from pipeline.models import CUDA_PROVIDER as CUDA
from pipeline.models import ModelName, locate_model, session_options
from pipeline.video import probe

RESULTS = Path("benchmarks/results")


CHECKS = ("decode", "models", "faiss")


class GpuPathError(RuntimeError):
    """A GPU path that was asked for did not run on the GPU."""


def make_clip(path: Path, seconds: float, size: tuple[int, int] = (1920, 1080), fps: int = 30) -> Path:
    """A moving gradient with drifting blocks, enough motion that the decoder does real work; a
    keyframe every second, as phones record (keyframe-first samples such uploads from keyframes)."""
    width, height = size
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "ultrafast", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            base = ((xs + ys + 4 * i) % 256).astype(np.uint8)
            picture = np.stack([base, np.roll(base, 7 * i, axis=1), np.roll(base, 5 * i, axis=0)], axis=2)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        out.mux(stream.encode(None))
    return path


@dataclass(frozen=True)
class DecodeJob:
    """One way of decoding the clip: on NVDEC or the CPU, every frame or keyframes alone, and
    whether each frame is brought to host memory as BGR (what the scan uses) or left on the GPU."""
    cuda: bool = False
    keyframes_only: bool = False
    on_device: bool = False


_start_together: threading.Barrier | None = None  # in a pool's worker: every worker starts timing at once


def _join_pool(barrier: threading.Barrier) -> None:
    global _start_together
    _start_together = barrier


def _wait_for_all() -> None:
    if _start_together is not None:
        _start_together.wait(timeout=600)


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """`workers` processes that wait for each other (`_wait_for_all`) before the timed part. Spawned,
    not forked: a child forked after the parent's own CUDA work inherits a broken context."""
    context = multiprocessing.get_context("spawn")
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_join_pool,
                                                  initargs=(context.Barrier(workers),))


def _decode(path: Path, job: DecodeJob, threads: int) -> tuple[int, bool, float, float]:
    """Frames decoded, whether NVDEC did it, and when decoding began and ended (wall clock)."""
    _wait_for_all()
    began = time.time()
    hwaccel = HWAccel("cuda", allow_software_fallback=False, is_hw_owned=job.on_device) if job.cuda else None
    with av.open(str(path), hwaccel=hwaccel) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        if job.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        frames = 0
        for frame in container.decode(stream):
            if not job.on_device:
                frame.to_ndarray(format="bgr24")
            frames += 1
        return frames, bool(stream.codec_context.is_hwaccel), began, time.time()


def decode_rate(path: Path, job: DecodeJob, workers: int = 1) -> dict:
    """Frames per second of `workers` decoders at once, each decoding the whole clip in its own
    process; one decoder gets every core, several get one thread each (a worker per core). Timed
    from the moment all have started, so the workers' own start-up is not counted."""
    if workers == 1:
        results = [_decode(path, job, threads=0)]
    else:
        with _pool(workers) as pool:
            futures = [pool.submit(_decode, path, job, 1) for _ in range(workers)]
            results = [future.result() for future in futures]
    seconds = max(end for *_, end in results) - min(began for *_, began, _ in results)
    frames = sum(result[0] for result in results)
    return {"workers": workers, "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 1),
            "hwaccel": all(result[1] for result in results)}


def _rates(path: Path, cuda: bool, workers: int) -> dict:
    """Every frame and keyframes alone, by one decoder and by `workers` at once; on NVDEC also with
    the frames left on the GPU, which tells NVDEC's own rate from the download and BGR conversion."""
    jobs = {"one": DecodeJob(cuda), "keyframes": DecodeJob(cuda, keyframes_only=True)}
    if cuda:
        jobs["one_on_device"] = DecodeJob(cuda, on_device=True)
    rates: dict = {name: decode_rate(path, job) for name, job in jobs.items()}
    if workers > 1:
        rates["parallel"] = decode_rate(path, DecodeJob(cuda), workers)
        rates["keyframes_parallel"] = decode_rate(path, DecodeJob(cuda, keyframes_only=True), workers)
        if cuda:
            rates["parallel_on_device"] = decode_rate(path, DecodeJob(cuda, on_device=True), workers)
    if cuda and not all(rate["hwaccel"] for rate in rates.values()):
        rates["error"] = "the decoder did not attach the CUDA device"
    return rates


def check_decode(path: Path, dry_run: bool, workers: int) -> dict:
    result: dict = {"ffmpeg_device_types": hwdevices_available(), "software": _rates(path, False, workers)}
    if "cuda" not in result["ffmpeg_device_types"]:
        result["cuda"] = {"error": "this FFmpeg build has no CUDA device type"}
    else:
        try:
            result["cuda"] = _rates(path, True, workers)
        except (av.error.FFmpegError, OSError) as exc:  # FFmpeg's EPERM without a driver is a PermissionError
            result["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
    if not dry_run and "error" in result["cuda"]:
        raise GpuPathError(f"hardware decoding failed: {result['cuda']['error']}")
    return result


def model_session(name: ModelName, providers: list[str]) -> ort.InferenceSession:
    """A packaged model on exactly `providers`; refuses a session that fell back to CPU."""
    session = ort.InferenceSession(str(locate_model(name)), sess_options=session_options(), providers=providers)
    used = session.get_providers()
    if providers[0] == CUDA and used[0] != CUDA:
        raise GpuPathError(f"onnxruntime put {name.value} on {used} instead of CUDA (available: "
                           f"{ort.get_available_providers()}): install onnxruntime-gpu matching the CUDA driver, "
                           "with its CUDA and cuDNN libraries")
    return session


def inference_rate(session: ort.InferenceSession, shape: tuple[int, ...], runs: int, threads: int = 1) -> dict:
    """Inputs per second of `runs` forward passes of a `shape` batch, spread over `threads` threads
    (one session serves several threads at once, as a worker's threads share one model)."""
    name = session.get_inputs()[0].name
    blob = np.random.default_rng(0).random(shape, dtype=np.float32)
    session.run(None, {name: blob})  # warm-up: CUDA picks its kernels on the first call

    def work(count: int) -> None:
        for _ in range(count):
            session.run(None, {name: blob})

    workers = [threading.Thread(target=work, args=(runs // threads,)) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    done = (runs // threads) * threads
    return {"batch": shape[0], "threads": threads, "runs": done, "per_s": round(done * shape[0] / seconds, 1),
            "ms_per_run": round(1000 * seconds / done, 2)}


def check_models(dry_run: bool) -> dict:
    """The detector on a 1080p frame's input (640x384, as the scan sizes it) and the embedder on
    aligned 112x112 faces, one at a time and in batches."""
    available = ort.get_available_providers()
    if CUDA not in available and not dry_run:
        raise GpuPathError(f"onnxruntime has no CUDA provider (available: {available}): install onnxruntime-gpu")
    providers = [CUDA] if CUDA in available else ["CPUExecutionProvider"]
    runs = 200 if CUDA in available else 5
    width, height = input_shape(1080, 1920, DetectionConfig().input_size)
    detector = model_session(ModelName.FACE_DETECTOR, providers)
    embedder = model_session(ModelName.FACE_EMBEDDER, providers)
    result: dict = {"available": available, "provider": detector.get_providers()[0],
                    "detector": inference_rate(detector, (1, 3, height, width), runs),
                    "detector_threads": inference_rate(detector, (1, 3, height, width), runs, threads=4),
                    "embedder": inference_rate(embedder, (1, 3, 112, 112), runs),
                    "embedder_batch": inference_rate(embedder, (16, 3, 112, 112), max(runs // 4, 2))}
    if CUDA not in available:
        result["cuda"] = f"not available in this onnxruntime build ({ort.__version__})"
    result["fps"] = max(result["detector"]["per_s"], result["detector_threads"]["per_s"])
    return result


def _scan_once_warm(path: Path, home: Path) -> dict:
    """In a pool's worker: the product's scan of `path` with the default settings and an empty
    gallery, once to load every model (and let CUDA pick its kernels), then timed with the others."""
    from benchmarks.scan_speed import process_cpu_s
    from workers.runtime import Runtime
    from workers.settings import Settings

    runtime = Runtime(Settings(home=home))
    scanner, gallery = runtime.scanner, runtime.gallery
    scanner.scan(path, gallery)
    _wait_for_all()
    began, cpu = time.time(), process_cpu_s()
    result = scanner.scan(path, gallery)
    return {"began": began, "ended": time.time(), "cpu_s": process_cpu_s() - cpu, "detector": runtime.detector.provider,
            "embedder": runtime.embedder.provider, "frames_decoded": result.decode.decoded,
            "keyframe_first": result.decode.keyframe_first, "tracks": len(result.tracks),
            "timings_ms": result.timings_ms}


def scan_rate(path: Path, workers: int) -> dict:
    """Seconds of video scanned per second by `workers` processes each scanning `path` at once, as
    a machine runs one worker process per core."""
    info = probe(path, SamplingConfig())
    duration, size = info.duration_s, [info.width, info.height]
    with tempfile.TemporaryDirectory() as homes, _pool(workers) as pool:
        futures = [pool.submit(_scan_once_warm, path, Path(homes) / str(n)) for n in range(workers)]
        results = [future.result() for future in futures]
    seconds = max(r["ended"] for r in results) - min(r["began"] for r in results)
    first = results[0]
    return {"clip": path.name, "size": size, "duration_s": round(duration, 2), "workers": workers,
            "seconds": round(seconds, 2), "x_realtime": round(duration * workers / seconds, 1),
            "scan_s_median": round(statistics.median_high([r["ended"] - r["began"] for r in results]), 2),
            "scan_cpu_s_median": round(statistics.median_high([r["cpu_s"] for r in results]), 2),
            "stage_ms_median": {stage: round(statistics.median_high([r["timings_ms"].get(stage, 0.0) for r in results]))
                                for stage in first["timings_ms"]},
            "providers": sorted({r["detector"] for r in results} | {r["embedder"] for r in results}),
            **{key: first[key] for key in ("frames_decoded", "keyframe_first", "tracks")}}


def make_uploads(folder: Path) -> list[Path]:
    """The two uploads `--scan` was timed on (docs/scanning.md): real footage (fer's woman2) at
    1920x1080, twice over (31 s), as a phone stores it (a keyframe a second, CRF 18) and as x264 does
    by default (veryfast, CRF 23, keyframes up to 250 frames apart)."""
    from benchmarks.scan_speed import reencoded_woman

    folder.mkdir(parents=True, exist_ok=True)
    return [reencoded_woman(folder / "phone-1080p-gop1s.mp4", (1920, 1080), {"crf": "18"}, gop_s=1.0, repeats=2),
            reencoded_woman(folder / "x264-1080p-default-gop.mp4", (1920, 1080), {"crf": "23"}, repeats=2)]


def _timed_rows(search: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """The rows a search found and the seconds it took."""
    started = time.perf_counter()
    _, rows = search()
    return rows, time.perf_counter() - started


def check_faiss(dry_run: bool, vectors: int) -> dict:
    try:
        import faiss

        from gallery.index.gpu import GpuExactSearch, gpu_available
    except ImportError as exc:  # the GPU machine may carry no faiss at all: say so, run the rest
        if not dry_run:
            raise GpuPathError(f"faiss is not installed here ({exc}): install faiss-gpu") from exc
        return {"gpu_available": False, "gpu": f"faiss is not installed ({exc})"}
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


def _best_fps(decode: dict, *names: str) -> float:
    """The fastest measured decoder of the clip among `names`, software or NVDEC (with frames
    brought to host memory, as the scan needs them)."""
    paths = [decode["software"]] + ([decode["cuda"]] if "error" not in decode.get("cuda", {}) else [])
    return max(path[name]["fps"] for path in paths for name in names if name in path)


def estimate(decode: dict, models: dict, fps: float) -> dict:
    """Seconds of 1080p video per second for one machine at the default sampling, bounded by its
    slowest stage: decoding every frame (keyframes far apart) or only the keyframes (keyframe-first
    on an upload with a keyframe a second), against detecting one coarse sample a video second."""
    whole = _best_fps(decode, "one", "parallel") / fps
    keyframes = _best_fps(decode, "keyframes", "keyframes_parallel")  # one keyframe a video second
    detect = models["fps"] * SamplingConfig().interval_s
    return {"whole_decode_x_realtime": round(whole, 1), "keyframe_decode_x_realtime": round(keyframes, 1),
            "detect_x_realtime": round(detect, 1),
            "scan_x_realtime_bound_whole_decode": round(min(whole, detect), 1),
            "scan_x_realtime_bound_keyframe_first": round(min(keyframes, detect), 1), "aim": 300}


def machine() -> dict:
    """What the figures were measured on: cores, processor, GPU and driver, library versions."""
    found = {"cpus": os.cpu_count(), "processor": platform.processor(), "python": platform.python_version(),
             "onnxruntime": ort.__version__, "pyav": av.__version__, "ffmpeg": av.ffmpeg_version_info}
    try:
        found["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                       "--format=csv,noheader"], capture_output=True, text=True, timeout=30,
                                      check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        found["gpu"] = f"nvidia-smi: {type(exc).__name__}"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-dry-run", action="store_true", help="run every path on CPU; report no GPU found")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 20 on GPU, 2 dry)")
    parser.add_argument("--vectors", type=int, default=None, help="gallery size (default 2,000,000 on GPU, 20,000 dry)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoders at once for the parallel rates (default: one per core on GPU, none dry)")
    parser.add_argument("--scan", type=Path, action="append", default=[],
                        help="also time the product's whole scan of this upload, one process per worker (repeatable)")
    parser.add_argument("--make-uploads", type=Path, metavar="FOLDER",
                        help="write the two 1080p uploads the scans were timed on into FOLDER and stop")
    parser.add_argument("--checks", nargs="*", choices=CHECKS, default=list(CHECKS),
                        help="which paths to check (default all; none with --scan alone)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.make_uploads:
        print("\n".join(str(path) for path in make_uploads(args.make_uploads)))
        return 0
    dry = args.cpu_dry_run
    seconds = args.seconds or (2.0 if dry else 20.0)
    vectors = args.vectors or (20_000 if dry else 2_000_000)
    workers = args.workers if args.workers is not None else (1 if dry else os.cpu_count() or 1)
    out = args.out or RESULTS / ("gpu_check.cpu_dry_run.json" if dry else "gpu_check.json")
    clip = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-check-{os.getpid()}.mp4"
    if "decode" in args.checks:
        make_clip(clip, seconds)
    report: dict = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "mode": "cpu dry run" if dry else "gpu", "machine": machine(),
                    "clip": {"size": [1920, 1080], "fps": 30, "seconds": seconds}}
    failures = []
    checks = {"decode": lambda: check_decode(clip, dry, workers), "models": lambda: check_models(dry),
              "faiss": lambda: check_faiss(dry, vectors)}
    for name in args.checks:
        check = checks[name]
        try:
            report[name] = check()
        except GpuPathError as exc:
            report[name] = {"error": str(exc)}
            failures.append(f"{name}: {exc}")
    clip.unlink(missing_ok=True)
    if "software" in report.get("decode", {}) and "fps" in report.get("models", {}):
        report["estimate"] = estimate(report["decode"], report["models"], 30.0)
    if args.scan:
        report["scans"] = [scan_rate(path, workers) for path in args.scan]
    gpu_seen = (report.get("decode", {}).get("cuda", {}).get("one", {}).get("hwaccel", False)
                or report.get("models", {}).get("provider") == CUDA
                or report.get("faiss", {}).get("gpu_available", False)
                or any(CUDA in scan["providers"] for scan in report.get("scans", [])))
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
