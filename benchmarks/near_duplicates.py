"""Near-duplicate detection measured on real pictures: how far each edit a re-poster makes (re-encode,
crop, mirror, text overlay, and combinations) moves a picture's hash from the original's, and how close
unrelated real pictures come to each other (the false-match rate at the match line).

Pictures: the package photos (samples/photos.py), the pinned real photos of samples/footage.py and two
frames of every pinned real video (a quarter and three quarters in; frames of one video are never
counted as unrelated to each other). Methods: the naive baseline (the exact pixels: SHA-256), pHash
(imagehash, 64 bits), PDQ (pdqhash, 256 bits) of the whole picture, and the product's PDQ with centred
crops (pipeline/near_duplicates.py), and that plus one-sided crops (the alternative not shipped), each
with the mirror taken into account.

    python benchmarks/near_duplicates.py   # writes benchmarks/results/near_duplicates.json
CPU time is process time (resource usage), not wall time: the machine is shared.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import imagehash
import numpy as np
import pdqhash
from PIL import Image

from pipeline import near_duplicates as nd
from samples import footage
from samples.photos import PACKAGE_PHOTOS, package_photo

OUT = Path(__file__).parent / "results" / "near_duplicates.json"
FONT = cv2.FONT_HERSHEY_SIMPLEX


def pictures() -> dict[str, tuple[str, np.ndarray]]:
    """name -> (source group, BGR picture); pictures of one group are related (one video)."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for name in PACKAGE_PHOTOS:
        out[f"package/{name}"] = (f"package/{name}", cv2.imread(str(package_photo(name))))
    for key in footage.PHOTOS:
        if key == "kphotoalbum_index":
            continue
        image = cv2.imread(str(footage.photo(key)))
        if image is not None:
            out[f"photo/{key}"] = (f"photo/{key}", image)
    for key in footage.CLIPS:
        capture = cv2.VideoCapture(str(footage.clip(key)))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for share in (0.25, 0.75):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(frames * share))
            ok, frame = capture.read()
            if ok and frame is not None and frame.std() > 8:  # a black or flat frame is no picture
                out[f"clip/{key}@{share}"] = (f"clip/{key}", frame)
        capture.release()
    return out


def reencode(image: np.ndarray) -> np.ndarray:
    """Half size, JPEG quality 30: what a platform's re-compression and a screenshot do."""
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_COLOR)


def crop(share: float) -> Callable[[np.ndarray], np.ndarray]:
    """Keep the centre `share` of width and height (an off-centre crop of the same area moves hashes as much)."""
    def run(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        dh, dw = int(h * (1 - share) / 2), int(w * (1 - share) / 2)
        return np.ascontiguousarray(image[dh:h - dh, dw:w - dw])
    return run


def mirror(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def overlay_text(image: np.ndarray) -> np.ndarray:
    """A caption bar over the bottom sixth with white text, as re-posters stamp on memes."""
    out = image.copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (0, h - h // 6), (w, h), (0, 0, 0), -1)
    scale = max(0.4, w / 900)
    cv2.putText(out, "you won't believe this #viral", (w // 20, h - h // 16), FONT, scale, (255, 255, 255),
                max(1, int(scale * 2)), cv2.LINE_AA)
    return out


EDITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reencode": reencode,
    # Centred crops at shares between the product's stored crops (1.0, 0.9, 0.8), so none is hashed as stored.
    "crop_95": crop(0.95),
    "crop_85": crop(0.85),
    "crop_75": crop(0.75),
    "crop_bottom_90": lambda im: np.ascontiguousarray(im[: int(im.shape[0] * 0.9)]),  # one side only
    "crop_top_88": lambda im: np.ascontiguousarray(im[int(im.shape[0] * 0.12):]),
    "crop_corner_90": lambda im: np.ascontiguousarray(im[: int(im.shape[0] * 0.9), : int(im.shape[1] * 0.9)]),
    "mirror": mirror,
    "overlay_text": overlay_text,
    "crop_95+reencode": lambda im: reencode(crop(0.95)(im)),
    "mirror+overlay_text": lambda im: overlay_text(mirror(im)),
}


class Method:
    """A way to tell pictures apart: `code(picture)` and `distance(a, b)` (mirror-aware)."""

    def __init__(self, name: str, code: Callable[[np.ndarray], object], distance: Callable[[object, object], float],
                 unit: str):
        self.name, self.code, self.distance, self.unit = name, code, distance, unit


def _phash(image: np.ndarray) -> tuple[imagehash.ImageHash, imagehash.ImageHash]:
    pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return imagehash.phash(pil), imagehash.phash(pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def _pdq_whole(image: np.ndarray) -> nd.Fingerprint:
    """PDQ of the picture and its mirror only (no crops): the product's hash without its crop variants."""
    rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    bits, quality = pdqhash.compute(rgb)
    mirrored, _ = pdqhash.compute(np.ascontiguousarray(rgb[:, ::-1]))
    return nd.Fingerprint(tuple(np.packbits(b.astype(np.uint8)).tobytes().hex() for b in (bits, mirrored)),
                          int(quality))


def _sides(image: np.ndarray) -> nd.Fingerprint:
    """The product's variants plus the picture with one side cut (10% off the top, bottom, left or right),
    mirrored too: the alternative measured against the product's fixed line (14 hashes per picture)."""
    h, w = image.shape[:2]
    cut = [image[: int(h * 0.9)], image[h - int(h * 0.9):], image[:, : int(w * 0.9)], image[:, w - int(w * 0.9):]]
    extra = [v for part in cut for v in nd.fingerprint(np.ascontiguousarray(part)).variants[:2]]
    full = nd.fingerprint(image)
    return nd.Fingerprint(full.variants + tuple(extra), full.quality)


def methods() -> list[Method]:
    return [
        Method("sha256 (naive)", lambda im: hashlib.sha256(cv2.imencode(".png", im)[1].tobytes()).hexdigest(),
               lambda a, b: 0.0 if a == b else 1.0, "equal or not"),
        Method("phash", _phash, lambda a, b: float(min(a[0] - b[0], a[0] - b[1])), "bits of 64"),
        Method("pdq", _pdq_whole, lambda a, b: float(nd.distance(a, b)), "bits of 256"),
        Method("pdq_crops", nd.fingerprint, lambda a, b: float(nd.distance(a, b)), "bits of 256"),
        Method("pdq_crops_sides", _sides, lambda a, b: float(nd.distance(a, b)), "bits of 256"),
    ]


def measure(method: Method, pics: dict[str, tuple[str, np.ndarray]]) -> dict:
    started = time.process_time()
    codes = {name: method.code(image) for name, (_, image) in pics.items()}
    cpu_ms = (time.process_time() - started) * 1000.0 / len(pics)
    edited = {edit: {name: method.distance(codes[name], method.code(fn(image)))
                     for name, (_, image) in pics.items()} for edit, fn in EDITS.items()}
    unrelated = [method.distance(codes[a], codes[b]) for a, b in itertools.combinations(pics, 2)
                 if pics[a][0] != pics[b][0]]
    closest_unrelated = min(unrelated)
    # The line: the largest distance that still matches no unrelated pair (0 false matches measured).
    line = max((d for ds in edited.values() for d in ds.values() if d < closest_unrelated), default=0.0)
    result = {"unit": method.unit, "cpu_ms_per_picture": round(cpu_ms, 1),
              "unrelated_pairs": len(unrelated), "closest_unrelated": round(closest_unrelated, 4),
              "unrelated_p01": round(float(np.percentile(unrelated, 1)), 4), "line_zero_false_matches": line,
              "edits": {}}
    for edit, distances in edited.items():
        values = np.array(list(distances.values()))
        result["edits"][edit] = {
            "median": round(float(np.median(values)), 4), "p95": round(float(np.percentile(values, 95)), 4),
            "max": round(float(values.max()), 4),
            "caught_at_line": round(float(np.mean(values <= line)), 3),
            "missed": sorted(name for name, d in distances.items() if d > line)}
    if method.name.startswith("pdq_crops"):  # at the product's fixed line
        result["product_line"] = nd.MATCH_BITS
        result["false_matches_at_product_line"] = int(sum(d <= nd.MATCH_BITS for d in unrelated))
        result["caught_at_product_line"] = {edit: round(float(np.mean(np.array(list(ds.values())) <= nd.MATCH_BITS)), 3)
                                            for edit, ds in edited.items()}
    return result


def main() -> None:
    pics = pictures()
    report = {"pictures": len(pics), "groups": len({g for g, _ in pics.values()}),
              "sources": sorted(pics), "edits": list(EDITS), "methods": {}}
    for method in methods():
        report["methods"][method.name] = measure(method, pics)
        print(method.name, json.dumps({k: v for k, v in report["methods"][method.name].items() if k != "edits"}))
        for edit, row in report["methods"][method.name]["edits"].items():
            print(f"  {edit:22s} median {row['median']:<8} p95 {row['p95']:<8} max {row['max']:<8} "
                  f"caught {row['caught_at_line']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
