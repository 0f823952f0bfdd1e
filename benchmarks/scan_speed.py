"""Seconds of video scanned per wall second on a 1080p H.264 clip with faces, vs decode alone.

Builds (once, cached) a 64 s 1920x1080 25 fps clip from package photos with pans, zooms and cuts,
then measures: full decode of every frame, the sampler's decode (non-reference frames skipped,
frames converted only when sampled) and a whole scan with a registered likeness. Writes
benchmarks/results/scan_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import av
import cv2

from pipeline.video import DecodeStats, probe, sample_frames
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from workers.runtime import Runtime
from workers.settings import Settings

PHOTOS = [("gdp.jpg", "pan"), ("yaoming.jpg", "zoom_in"), ("players.jpg", "pan"), ("t1.jpg", "zoom_out"),
          ("grace_hopper.jpg", "static"), ("astronaut.png", "pan"), ("players.jpg", "zoom_in"), ("gdp.jpg", "static")]


def build_clip(path: Path, seconds: float) -> Path:
    if path.exists():
        return path
    per = seconds / len(PHOTOS)
    scenes = [Scene(cv2.imread(str(package_photo(name))), per, motion) for name, motion in PHOTOS]
    path.parent.mkdir(parents=True, exist_ok=True)
    return encode_video(path, scenes, size=(1920, 1080), fps=25, crf=23, preset="veryfast")


def full_decode(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = sum(1 for _ in container.decode(stream))
    return count, time.perf_counter() - started


def sampler_decode(path: Path, settings: Settings) -> tuple[DecodeStats, float]:
    stats = DecodeStats()
    started = time.perf_counter()
    for _ in sample_frames(probe(path, settings.scan.sampling), settings.scan.sampling, stats):
        pass
    return stats, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", type=Path, default=Path.home() / ".cache" / "likeness-bench" / "faces-1080p-64s.mp4")
    parser.add_argument("--seconds", type=float, default=64.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scan_speed.json"))
    args = parser.parse_args()
    clip = build_clip(args.clip, args.seconds)
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"likeness-bench-home-{os.getpid()}"
    settings = Settings(home=home, database_url=None)
    runtime = Runtime(settings)
    info = probe(clip, settings.scan.sampling)
    frames, full_s = full_decode(clip)
    stats, sampler_s = sampler_decode(clip, settings)
    runtime.gallery.add("Yao Ming", "person", "bench", "ai_if_labelled", [],
                        runtime.enroller.enroll([package_photo("yaoming.jpg")]))
    runtime.gallery.refresh()
    scanner = runtime.scanner
    started = time.perf_counter()
    result = scanner.scan(clip, runtime.gallery)
    scan_s = time.perf_counter() - started
    report = {
        "clip": {"path": str(clip), "duration_s": info.duration_s, "size": [info.width, info.height], "fps": info.fps},
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "provider": runtime.detector.provider},
        "full_decode": {"frames": frames, "seconds": round(full_s, 2),
                        "x_realtime": round(info.duration_s / full_s, 1)},
        "sampler_decode": {"frames_decoded": stats.decoded, "frames_sampled": stats.sampled,
                           "seconds": round(sampler_s, 2), "x_realtime": round(info.duration_s / sampler_s, 1)},
        "scan": {"seconds": round(scan_s, 2), "x_realtime": round(info.duration_s / scan_s, 1),
                 "interval_s": settings.scan.sampling.interval_s, "tracks": len(result.tracks),
                 "findings": [f.identity.name for f in result.findings],
                 "timings_ms": {k: round(v) for k, v in result.timings_ms.items()}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
