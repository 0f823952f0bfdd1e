"""Face-level forensics: does each signal separate real faces from pasted ones?

Real: every frontal face of at least 40 px in the package photos and face_recognition's photos,
at full size and shrunk to 0.6, as photos and as H.264 frames. Fake: each of those faces replaced
by a face from another photo (yaoming.jpg, grace_hopper.jpg, astronaut.png, the Obama/Biden
photos, t1.jpg, gdp.jpg, dlib's johns), aligned by a similarity transform on the 5 landmarks and
blended with cv2.seamlessClone (NORMAL or MIXED, mask = face ellipse or dilated landmark hull).
Sources are picked so that about half are upscaled onto the target (>= 1.3x), since resampling is
what leaves the texture mismatch. Then whole scans: H.264 videos with camera motion built from the
real and the fake pictures run through sampling, detection, tracking and FaceForensics, per
track; and per-frame swaps (each frame cloned on its own, as face-swap tools do) for the jitters.

Writes benchmarks/results/face_forensics.json: per signal the AUC (real vs fake; 0.5 = no
separation) overall and by source scale, mode and mask, the real-footage calibration behind
FaceForensicsConfig and the module constants, and observe() cost per frame.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.synthetic import face_forensics as ff
from pipeline.config import (
    DetectionConfig,
    QualityConfig,
    SamplingConfig,
    TrackingConfig,
)
from pipeline.faces.align import align_face
from pipeline.faces.detector import DetectedFace, FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.quality import assess
from pipeline.faces.tracking import FaceTracker
from pipeline.types import FaceObservation, Frame, Track
from pipeline.video import probe, sample_frames
from samples.clips import Scene, encode_video, frame_at
from samples.packages import face_recognition_photos
from samples.pastes import (
    SourceFace,
    clone_face,
    eye_distance,
    frontal_faces,
    matching_face,
    source_faces,
    target_images,
)

UPSCALED = 1.3      # source faces enlarged at least this much count as "upscaled"
DOWNSCALED = 0.75
VIDEO_SIZE = (640, 360)
MOTIONS = ("static", "zoom_in", "pan")


@dataclass
class Sample:
    kind: str           # "real" | "fake"
    target: str         # target photo name
    scale: float = 1.0  # target eye distance / source eye distance
    mode: str = ""
    mask: str = ""
    face_px: float = 0.0              # target face box width in the picture
    photo: np.ndarray | None = None   # texture differences on the picture itself
    h264: np.ndarray | None = None    # ... on the decoded H.264 frame


# ---------------------------------------------------------------- H.264

def through_h264(image: np.ndarray, workdir: Path, crf: int = 23) -> np.ndarray:
    """The picture after an H.264 round trip at its own (even) size."""
    h, w = image.shape[:2]
    path = encode_video(workdir / "still.mp4", [Scene(image[: h // 2 * 2, : w // 2 * 2], 0.6)],
                        size=(w // 2 * 2, h // 2 * 2), crf=crf)
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 10:  # a P-frame, as most of a video is
                return frame.to_ndarray(format="bgr24")
    raise RuntimeError(f"{path}: fewer than 11 frames")


# ---------------------------------------------------------------- stills

def measure(detector: FaceDetector, image: np.ndarray, box: np.ndarray, max_pixels: int) -> np.ndarray | None:
    face = matching_face(detector, image, box)
    return None if face is None else ff.texture_differences(image, face.landmarks, max_pixels)


def still_samples(detector: FaceDetector, targets: dict[str, np.ndarray], sources: list[SourceFace],
                  rng: random.Random, workdir: Path, config: ff.FaceForensicsConfig) -> list[Sample]:
    samples = []
    for name, full in targets.items():
        for shrink in (1.0, 0.6):
            image = full if shrink == 1.0 else cv2.resize(full, None, fx=shrink, fy=shrink,
                                                          interpolation=cv2.INTER_AREA)
            faces = frontal_faces(detector, image, config.min_face_px)[:8]
            encoded = through_h264(image, workdir)
            for face in faces:
                samples.append(Sample("real", name, face_px=float(face.bbox[2] - face.bbox[0]),
                                      photo=measure(detector, image, face.bbox, config.max_crop_pixels),
                                      h264=measure(detector, encoded, face.bbox, config.max_crop_pixels)))
                samples += fake_samples(detector, image, face, name, sources, rng, workdir, config)
            print(f"  stills: {name} x{shrink}: {len(faces)} faces", flush=True)
    return samples


def fake_samples(detector: FaceDetector, image: np.ndarray, face: DetectedFace, name: str, sources: list[SourceFace],
                 rng: random.Random, workdir: Path, config: ff.FaceForensicsConfig) -> list[Sample]:
    others = [s for s in sources if not s.name.startswith(name)]
    ratio = {s.name: eye_distance(face.landmarks) / eye_distance(s.landmarks) for s in others}
    up = [s for s in others if ratio[s.name] >= UPSCALED]
    rest = [s for s in others if ratio[s.name] < UPSCALED]
    chosen = rng.sample(up, min(3, len(up))) + rng.sample(rest, min(3, len(rest)))
    samples = []
    for source in chosen:
        mode, mask = rng.choice(("normal", "mixed")), rng.choice(("ellipse", "hull"))
        fake = clone_face(image, face.landmarks, source, mode, mask)
        samples.append(Sample("fake", name, ratio[source.name], mode, mask, float(face.bbox[2] - face.bbox[0]),
                              photo=measure(detector, fake, face.bbox, config.max_crop_pixels),
                              h264=measure(detector, through_h264(fake, workdir), face.bbox, config.max_crop_pixels)))
    return samples


# ---------------------------------------------------------------- statistics

def auc(real: list[float], fake: list[float]) -> float | None:
    """P(fake > real), ties half: 0.5 is no separation, 1.0 perfect."""
    r, f = np.asarray(real, float), np.asarray(fake, float)
    if not len(r) or not len(f):
        return None
    return round(float((f[:, None] > r[None, :]).mean() + 0.5 * (f[:, None] == r[None, :]).mean()), 3)


def spread(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {"n": int(v.size), **{f"p{q}": round(float(np.percentile(v, q)), 3) for q in (5, 25, 50, 75, 95)}} \
        if v.size else {"n": 0}


def rms_z(differences: np.ndarray) -> float:
    z = (differences - ff.REAL_CENTRE) / ff.REAL_SPREAD
    return float(np.sqrt(np.mean(z * z)))


FAKE_GROUPS = {
    "all": lambda s: True,
    "upscaled_source": lambda s: s.scale >= UPSCALED,
    "same_scale_source": lambda s: DOWNSCALED < s.scale < UPSCALED,
    "downscaled_source": lambda s: s.scale <= DOWNSCALED,
    "normal_clone": lambda s: s.mode == "normal",
    "mixed_clone": lambda s: s.mode == "mixed",
    "ellipse_mask": lambda s: s.mask == "ellipse",
    "hull_mask": lambda s: s.mask == "hull",
}
SIZE_GROUPS = {"faces_40_63px": lambda s: s.face_px < 64, "faces_64px_up": lambda s: s.face_px >= 64}


def still_report(samples: list[Sample], condition: str) -> dict:
    """AUC of the blending statistic and of each signed texture difference, by fake group."""
    real = [getattr(s, condition) for s in samples if s.kind == "real" and getattr(s, condition) is not None]
    fakes = [s for s in samples if s.kind == "fake" and getattr(s, condition) is not None]
    report = {"real_faces": len(real), "fake_faces": len(fakes),
              "real_centre": np.median(real, axis=0).round(3).tolist(),
              "real_spread": (1.4826 * np.median(np.abs(np.array(real) - np.median(real, axis=0)), axis=0))
              .round(3).tolist(),
              "blend_statistic": {"real": spread([rms_z(d) for d in real]), "auc": {}, "fake": {}},
              "texture_differences_auc": {}}
    for group, keep in FAKE_GROUPS.items():
        chosen = [getattr(s, condition) for s in fakes if keep(s)]
        report["blend_statistic"]["auc"][group] = auc([rms_z(d) for d in real], [rms_z(d) for d in chosen])
        report["blend_statistic"]["fake"][group] = spread([rms_z(d) for d in chosen])
        report["texture_differences_auc"][group] = {
            name: auc([d[i] for d in real], [d[i] for d in chosen]) for i, name in enumerate(ff.TEXTURE_NAMES)}
    for group, keep in SIZE_GROUPS.items():
        real_group = [rms_z(getattr(s, condition)) for s in samples
                      if s.kind == "real" and keep(s) and getattr(s, condition) is not None]
        fake_group = [rms_z(getattr(s, condition)) for s in fakes if keep(s)]
        report["blend_statistic"]["auc"][group] = auc(real_group, fake_group)
        report["blend_statistic"]["real"][group] = spread(real_group)
    return report


# ---------------------------------------------------------------- videos and tracks

class Scanner:
    """The scan's face stages (sample, detect, align, assess, embed, track) feeding FaceForensics."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder):
        self.detector, self.embedder = detector, embedder
        self.sampling = SamplingConfig(interval_s=0.5)
        self.quality, self.tracking = QualityConfig(), TrackingConfig()
        self.observe_ms: list[float] = []

    def scan(self, path: Path, forensics: ff.FaceForensics) -> list[Track]:
        tracker = FaceTracker(self.tracking)
        for frame in sample_frames(probe(path, self.sampling), self.sampling):
            faces = self.faces(frame)
            tracker.update(faces, frame.t_s)
            started = time.process_time()
            forensics.observe(frame, faces)
            self.observe_ms.append((time.process_time() - started) * 1000)
        return tracker.finish()

    def faces(self, frame: Frame) -> list[FaceObservation]:
        found = self.detector.detect(frame.image)
        crops = [align_face(frame.image, d.landmarks) for d in found]
        embeddings = self.embedder.embed(crops)
        return [FaceObservation(frame.t_s, frame.index, d.bbox, d.score, d.landmarks, e, assess(d, c, self.quality), c)
                for d, c, e in zip(found, crops, embeddings)]


def scene_box(face: DetectedFace, image: np.ndarray) -> tuple[float, float, float, float]:
    """A 16:9 window around the face, three face widths wide: a head-and-shoulders shot."""
    x1, y1, x2, y2 = face.bbox
    cx, cy, width = (x1 + x2) / 2, (y1 + y2) / 2 + 0.2 * (y2 - y1), 3.0 * (x2 - x1)
    return (cx - width / 2, cy - width * 9 / 32, cx + width / 2, cy + width * 9 / 32)


def video_tracks(scanner: Scanner, path: Path, config: ff.FaceForensicsConfig) -> dict:
    forensics = ff.FaceForensics(config)
    tracks = scanner.scan(path, forensics)
    blending = forensics.track_blending(tracks)
    main = max(blending, key=lambda v: v.faces, default=None)
    return {"blend": None if main is None else main.value,
            "identity_jitter": max((v for t in tracks if (v := ff.identity_jitter(t, config.jitter_min_faces))
                                    is not None), default=None),
            "landmark_jitter": max((v for t in tracks if (v := ff.landmark_jitter(t, config.jitter_min_faces))
                                    is not None), default=None),
            "signals": {s.name: s.score for s in forensics.signals(tracks)}}


def video_samples(detector: FaceDetector, scanner: Scanner, targets: dict[str, np.ndarray], sources: list[SourceFace],
                  rng: random.Random, workdir: Path, config: ff.FaceForensicsConfig) -> dict[str, list[dict]]:
    """Per target face: two real clips and two composited fakes with camera motion, one per-frame swap."""
    out: dict[str, list[dict]] = {"real": [], "fake": [], "per_frame_swap": []}
    count = 0
    for name, image in targets.items():
        for face in frontal_faces(detector, image, 56)[:3]:
            box = scene_box(face, image)
            others = [s for s in sources if not s.name.startswith(name)]
            for source in rng.sample(others, 2):
                motion = MOTIONS[count % len(MOTIONS)]
                mode, mask = rng.choice(("normal", "mixed")), rng.choice(("ellipse", "hull"))
                fake = clone_face(image, face.landmarks, source, mode, mask)
                scale = round(eye_distance(face.landmarks) / eye_distance(source.landmarks), 2)
                for kind, picture in (("real", image), ("fake", fake)):
                    path = encode_video(workdir / f"{kind}.mp4", [Scene(picture, 2.6, motion, box)], size=VIDEO_SIZE)
                    out[kind].append({"target": name, "motion": motion, "source": source.name, "scale": scale,
                                      "mode": mode, "mask": mask, **video_tracks(scanner, path, config)})
                count += 1
            swapped = per_frame_swap(detector, [Scene(image, 2.6, "zoom_in", box)], source, workdir)
            out["per_frame_swap"].append({"target": name, "source": source.name,
                                          **video_tracks(scanner, swapped, config)})
        print(f"  videos: {name}", flush=True)
    return out


def per_frame_swap(detector: FaceDetector, scenes: list[Scene], source: SourceFace, workdir: Path,
                   fps: int = 25) -> Path:
    """Each frame of the real clip with `source` cloned onto the face detected in that frame."""
    duration = sum(s.duration_s for s in scenes)
    frames = []
    for i in range(int(duration * fps)):
        picture = frame_at(scenes, i / fps, VIDEO_SIZE)
        faces = frontal_faces(detector, picture, 20)
        if faces:
            biggest = max(faces, key=lambda f: f.bbox[2] - f.bbox[0])
            picture = clone_face(picture, biggest.landmarks, source, "normal", "hull")
        frames.append(Scene(picture, 1.0 / fps))
    return encode_video(workdir / "swap.mp4", frames, size=VIDEO_SIZE, fps=fps)


def video_report(videos: dict[str, list[dict]]) -> dict:
    report = {"clips": {k: len(v) for k, v in videos.items()}}
    for key in ("blend", "identity_jitter", "landmark_jitter"):
        real = _values(videos["real"], key)
        report[key] = {"real": spread(real), "composited_fake": spread(_values(videos["fake"], key)),
                       "per_frame_swap": spread(_values(videos["per_frame_swap"], key)),
                       "auc_composited": auc(real, _values(videos["fake"], key)),
                       "auc_per_frame_swap": auc(real, _values(videos["per_frame_swap"], key))}
    for group, keep in FAKE_GROUPS.items():
        chosen = [v for v in videos["fake"] if keep(Sample("fake", v["target"], v["scale"], v["mode"], v["mask"]))]
        report["blend"][f"auc_composited_{group}"] = auc(_values(videos["real"], "blend"), _values(chosen, "blend"))
    report["face_blending_score"] = {k: spread([v["signals"]["face_blending"] for v in videos[k]
                                                if v["signals"]["face_blending"] is not None]) for k in videos}
    return report


def _values(clips: list[dict], key: str) -> list[float]:
    return [c[key] for c in clips if c[key] is not None]


def calibration(samples: list[Sample], videos: dict[str, list[dict]]) -> dict:
    """Real-footage levels behind FaceForensicsConfig: blending over real video tracks and H.264
    stills (each a one-frame track) together, jitters over real video tracks."""
    blend = _values(videos["real"], "blend") + [rms_z(s.h264) for s in samples
                                                if s.kind == "real" and s.h264 is not None]
    levels = {"blend": blend, "identity_jitter": _values(videos["real"], "identity_jitter"),
              "landmark_jitter": _values(videos["real"], "landmark_jitter")}
    return {key: {"n": len(v), "typical_p50": round(float(np.median(v)), 3),
                  "alarm_p95": round(float(np.percentile(v, 95)), 3)}
            for key, v in levels.items()}


# ---------------------------------------------------------------- cost

def observe_cost(detector: FaceDetector, embedder: FaceEmbedder, config: ff.FaceForensicsConfig) -> dict:
    """observe() CPU time per frame for one head-and-shoulders face, by frame size."""
    image = cv2.imread(str(face_recognition_photos()["obama"]))
    scanner = Scanner(detector, embedder)
    cost = {}
    for width, height in ((640, 360), (1280, 720), (1920, 1080)):
        scene = [Scene(image, 1.0, crop=(0, 250, image.shape[1], 250 + image.shape[1] * 9 / 16))]
        picture = frame_at(scene, 0.0, (width, height))
        frame = Frame(0, 0.0, picture, "interval")
        faces = scanner.faces(frame)
        forensics = ff.FaceForensics(config)
        started = time.process_time()
        for _ in range(20):
            forensics.observe(frame, faces)
        cost[f"{width}x{height}"] = {"faces": len(faces),
                                     "face_px": int(max((f.bbox[2] - f.bbox[0] for f in faces), default=0)),
                                     "cpu_ms_per_frame": round((time.process_time() - started) * 1000 / 20, 2)}
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/face_forensics.json"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = ff.FaceForensicsConfig()
    detector = FaceDetector.load(DetectionConfig(), prefer_gpu=False)
    embedder = FaceEmbedder.load(DetectionConfig(), prefer_gpu=False)
    targets = target_images()
    sources = source_faces(detector, targets)
    rng = random.Random(args.seed)
    scanner = Scanner(detector, embedder)
    with tempfile.TemporaryDirectory() as tmp:
        samples = still_samples(detector, targets, sources, rng, Path(tmp), config)
        videos = video_samples(detector, scanner, targets, sources, rng, Path(tmp), config)
    report = {
        "provider": detector.provider,
        "sources": len(sources),
        "config": config.model_dump(),
        "module_constants": {"real_centre": ff.REAL_CENTRE.tolist(), "real_spread": ff.REAL_SPREAD.tolist(),
                             "texture_differences": list(ff.TEXTURE_NAMES)},
        "stills": {"photo": still_report(samples, "photo"), "h264": still_report(samples, "h264")},
        "videos": video_report(videos),
        "calibration": calibration(samples, videos),
        "video_clips": videos,
        "observe_cpu_ms": {"scan_frames": spread(scanner.observe_ms),
                           "by_frame_size": observe_cost(detector, embedder, config)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("stills", "videos", "calibration", "observe_cpu_ms")}, indent=2))


if __name__ == "__main__":
    main()
