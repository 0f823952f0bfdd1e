"""Character matching on real media: the similarities behind CharacterConfig, and what the path costs.

Data: Megamind.avi from Debian's opencv-doc (a DreamWorks trailer excerpt, four shots: Roxanne,
Megamind, Roxanne, Megamind). Megamind is registered from his first shot (frames every 0.5 s, as a
clip reference is), Roxanne from hers as a second character of the same film. Queries: every
0.5 s of the clip, cropped as a scan crops; unrelated content: opencv-doc's still images (photos,
paintings, cartoons, logos, renders), real photos of people (package photos, dlib's johns,
face_recognition's test images) and frames of opencv-doc's vtest.avi and tree.avi. ArcFace
similarities of the drawn faces show why the face path needs its own bar for characters.

Cost: the same videos scanned with the character path off (no character registered) and on
(Megamind registered), reported per scanned minute. Writes benchmarks/results/characters.json.
`apt-get install -y opencv-doc` provides the media.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from gallery.characters import ReferenceImage
from pipeline.characters import CharacterConfig, choose_crops, cut
from pipeline.config import SamplingConfig
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess
from pipeline.scan import Scanner
from pipeline.video import probe, sample_frames
from samples.packages import dlib_johns, face_recognition_photos
from samples.photos import PACKAGE_PHOTOS, package_photo
from workers.runtime import Runtime
from workers.settings import Settings

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# Shots by frame difference; each bound lies just before the first frame of its shot (4.129, 6.465, 8.383 s).
SHOTS = {"black": (0.0, 0.08), "roxanne_1": (0.08, 4.12), "megamind_1": (4.12, 6.46), "roxanne_2": (6.46, 8.38),
         "megamind_2": (8.38, 11.27)}
NEAR_DUPLICATES = ("left0", "left1", "right0", "right1")  # 26 calibration shots of one scene: keep 2


def shot(t_s: float) -> str:
    return next(name for name, (start, end) in SHOTS.items() if start <= t_s < end)


def frames(path: Path, every_s: float, start_s: float = 0.0, end_s: float | None = None) -> list:
    sampling = SamplingConfig(interval_s=every_s, scene_cuts=False)
    return list(sample_frames(probe(path, sampling), sampling, start_s=start_s, end_s=end_s))


def stats(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"n": int(v.size), "min": round(float(v.min()), 3), "p05": round(float(np.quantile(v, 0.05)), 3),
            "median": round(float(np.median(v)), 3), "p95": round(float(np.quantile(v, 0.95)), 3),
            "max": round(float(v.max()), 3)}


class Crops:
    """Images cropped as a scan crops them, embedded in one batch, with labels."""

    def __init__(self, runtime: Runtime, config: CharacterConfig):
        self.runtime, self.config = runtime, config
        self.labels: list[dict] = []
        self.images: list[np.ndarray] = []

    def add(self, image: np.ndarray, **label) -> None:
        faces = [d.bbox for d in self.runtime.detector.detect(image)]
        for crop in choose_crops(image, faces, self.config):
            self.labels.append({**label, "region": crop.region})
            self.images.append(cut(image, crop.box))

    def embed(self) -> np.ndarray:
        return self.runtime.image_embedder.embed(self.images, self.config.batch_size)


def references(runtime: Runtime, config: CharacterConfig, clip: Path, name: str, face, folder: Path) -> np.ndarray:
    """A character's CLIP references from one shot, as `gallery add` makes them from a clip."""
    start, end = SHOTS[name]
    images = []
    for frame in frames(clip, config.reference_interval_s, start, end):
        path = folder / f"{name}-{frame.t_s:.2f}.png"
        cv2.imwrite(str(path), frame.image)
        images.append(ReferenceImage(path, clip, frame.t_s))
    enrolled = runtime.character_enroller.enroll(images, face=face)
    return np.stack([r.embedding for r in enrolled.references])


def unrelated(crops: Crops) -> None:
    for path in sorted(DATA.glob("*.jpg")) + sorted(DATA.glob("*.png")):
        image = cv2.imread(str(path))
        keep = not path.name.startswith(NEAR_DUPLICATES) or path.stem in ("left01", "right01")
        if image is not None and min(image.shape[:2]) >= 64 and keep:
            crops.add(image, group="stills", source=path.name)
    people = [package_photo(n) for n in PACKAGE_PHOTOS] + list(face_recognition_photos().values())
    people += [p for paths in dlib_johns().values() for p in paths[:2]]
    for path in people:
        crops.add(cv2.imread(str(path)), group="photos_of_people", source=path.name)
    for name, every in (("vtest.avi", 8.0), ("tree.avi", 6.0)):
        for frame in frames(DATA / name, every):
            crops.add(frame.image, group="unrelated_videos", source=f"{name}@{frame.t_s:.1f}")


def similarity(runtime: Runtime, config: CharacterConfig) -> dict:
    clip = DATA / "Megamind.avi"
    with tempfile.TemporaryDirectory() as folder:
        megamind = references(runtime, config, clip, "megamind_1", None, Path(folder))
        roxanne = references(runtime, config, clip, "roxanne_1", "largest", Path(folder))
    crops = Crops(runtime, config)
    for frame in frames(clip, 0.5):
        crops.add(frame.image, group=shot(frame.t_s), source=f"Megamind.avi@{frame.t_s:.2f}", t_s=frame.t_s)
    unrelated(crops)
    started = time.perf_counter()
    embeddings = crops.embed()
    per_crop_s = (time.perf_counter() - started) / len(crops.images)
    to_m = (embeddings @ megamind.T).max(axis=1)
    to_r = (embeddings @ roxanne.T).max(axis=1)
    groups = ["megamind_2", "roxanne_2", "roxanne_1", "stills", "photos_of_people", "unrelated_videos"]
    by_region = {g: {r: stats([s for s, lab in zip(to_m, crops.labels) if lab["group"] == g and lab["region"] == r])
                     for r in ("whole", "face", "salient")
                     if any(lab["group"] == g and lab["region"] == r for lab in crops.labels)} for g in groups}
    best: dict[tuple[str, str], float] = {}  # the best crop of each frame or image
    second: dict[tuple[str, str], float] = {}
    for sm, sr, lab in zip(to_m, to_r, crops.labels):
        key = (lab["group"], lab["source"])
        best[key] = max(best.get(key, -1.0), float(sm))
        second[key] = max(second.get(key, -1.0), float(sr))
    per_frame = {g: stats([v for (group, _), v in best.items() if group == g]) for g in groups}
    closest = sorted(((v, src, g) for (g, src), v in best.items() if not g.startswith("megamind")), reverse=True)[:8]
    margins = {g: stats([abs(best[k] - second[k]) for k in best if k[0] == g]) for g in ("megamind_2", "roxanne_2")}
    right = {g: sum(1 for k in best if k[0] == g and (best[k] > second[k]) == g.startswith("megamind"))
             for g in ("megamind_2", "roxanne_2")}
    return {"references": {"megamind": len(megamind), "roxanne": len(roxanne)},
            "clip_seconds_per_crop": round(per_crop_s, 3),
            "to_megamind_by_region": by_region, "to_megamind_best_crop_per_frame": per_frame,
            "closest_unrelated_frames": [{"similarity": round(v, 3), "source": s, "group": g} for v, s, g in closest],
            "two_characters": {"margin_of_the_right_character": margins, "frames_ranked_right": right,
                               "frames": {g: sum(1 for k in best if k[0] == g) for g in margins}},
            "arcface_on_drawn_faces": arcface(runtime, clip)}


def arcface(runtime: Runtime, clip: Path) -> dict:
    """Per-face ArcFace similarity to Megamind's face references (his first shot)."""
    quality = runtime.settings.scan.quality
    faces: dict[str, list[np.ndarray]] = {}
    for frame in frames(clip, 0.5):
        for d in runtime.detector.detect(frame.image):
            crop = align_face(frame.image, d.landmarks)
            if assess(d, crop, quality).usable:
                faces.setdefault(shot(frame.t_s), []).append(runtime.embedder.embed([crop])[0])
    references = np.stack(faces.pop("megamind_1"))
    return {name: stats((np.stack(embs) @ references.T).max(axis=1)) for name, embs in faces.items()}


def cost(runtime: Runtime, seconds: float) -> dict:
    """Scan wall time with the character path off and on; the difference per scanned minute."""
    off = Scanner(runtime.detector, runtime.embedder, runtime.settings.scan, runtime._synthetic(),
                  runtime.settings.policy)
    on = runtime.scanner
    results = {}
    for name in ("Megamind.avi", "vtest.avi"):
        path = DATA / name
        duration = min(probe(path, runtime.settings.scan.sampling).duration_s, seconds)
        timings, scans = {}, {}
        for label, scanner in (("off", off), ("on", on)):
            started = time.perf_counter()
            scans[label] = scanner.scan(path, runtime.gallery, end_s=duration)
            timings[label] = time.perf_counter() - started
        added = timings["on"] - timings["off"]
        characters = scans["on"].characters
        results[name] = {"scanned_s": round(duration, 1), "off_s": round(timings["off"], 1),
                         "on_s": round(timings["on"], 1), "added_s_per_scanned_minute": round(added * 60 / duration, 1),
                         "off_x_realtime": round(duration / timings["off"], 2),
                         "on_x_realtime": round(duration / timings["on"], 2),
                         "frames_embedded": characters.frames_embedded, "crops_embedded": characters.crops_embedded,
                         "character_stage_s": round(scans["on"].timings_ms.get("characters", 0.0) / 1000, 1),
                         "findings_on": [f.identity.name for f in scans["on"].findings]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("similarity", "cost", "all"), default="all")
    parser.add_argument("--cost-seconds", type=float, default=40.0, help="scan at most this much of each video")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/characters.json"))
    args = parser.parse_args()
    if not (DATA / "Megamind.avi").is_file():
        raise SystemExit(f"{DATA / 'Megamind.avi'} missing: apt-get install -y opencv-doc")
    config = CharacterConfig()
    home = Path(tempfile.mkdtemp(prefix="likeness-bench-characters-"))
    runtime = Runtime(Settings(home=home, database_url=None, image_probe=False), characters=config)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    report["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                         "clip_provider": runtime.image_embedder.provider, "load_average": os.getloadavg()}
    report["config"] = config.model_dump()
    if args.part in ("similarity", "all"):
        report["similarity"] = similarity(runtime, config)
    if args.part in ("cost", "all"):
        with tempfile.TemporaryDirectory() as folder:
            part = Path(folder) / "megamind-shot2"
            part.mkdir()
            stills = [ReferenceImage(p, p) for p in _stills(DATA / "Megamind.avi", part, config)]
            runtime.character_gallery.add(runtime.gallery, "Megamind", "dreamworks", "ai_if_labelled", [],
                                          runtime.enroller.enroll([s.path for s in stills]),
                                          runtime.character_enroller.enroll(stills))
        runtime.gallery.refresh()
        report["cost"] = cost(runtime, args.cost_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def _stills(clip: Path, folder: Path, config: CharacterConfig) -> list[Path]:
    paths = []
    for frame in frames(clip, config.reference_interval_s, *SHOTS["megamind_1"]):
        paths.append(folder / f"{frame.t_s:.2f}.png")
        cv2.imwrite(str(paths[-1]), frame.image)
    return paths


if __name__ == "__main__":
    main()
