"""A segment's observation ⇄ JSON, so a segment scanned on one worker can be merged on another.

Only what the merge needs travels: tracks with every face's embedding (float32, base64) and
quality, decode counts, dropped faces, timings, synthetic signals and the character path's samples
(CLIP embeddings, float32, base64). Pixels never do: evidence thumbnails stay on the segment's worker.
"""
from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.characters import CharacterSample
from pipeline.scan import CharacterSamples, Observation
from pipeline.types import FaceObservation, FaceQuality, Signal, Track
from pipeline.video import DecodeStats


@dataclass
class SegmentPart:
    """What one segment contributes to the merged scan."""

    start_s: float
    end_s: float | None
    tracks: list[Track]
    decode: DecodeStats
    dropped_faces: dict[str, int]
    timings_ms: dict[str, float]
    signals: list[Signal]
    warnings: list[str] = field(default_factory=list)
    characters: CharacterSamples | None = None


def _array(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _plain(value):
    """numpy scalars (scores, flags computed with numpy) as JSON's own types."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


def _vector(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype=np.float32).tobytes()).decode("ascii")


def _unvector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


def _face(face: FaceObservation) -> dict:
    return {"t_s": float(face.t_s), "frame_index": int(face.frame_index), "bbox": _array(face.bbox),
            "det_score": float(face.det_score), "landmarks": _array(face.landmarks),
            "embedding": None if face.embedding is None else _vector(face.embedding),  # None: linked by overlap alone
            "quality": {k: _plain(v) for k, v in asdict(face.quality).items()}}


def _unface(data: dict) -> FaceObservation:
    quality = data["quality"]
    return FaceObservation(
        t_s=data["t_s"], frame_index=data["frame_index"], bbox=np.array(data["bbox"], dtype=np.float32),
        det_score=data["det_score"], landmarks=np.array(data["landmarks"], dtype=np.float32).reshape(5, 2),
        embedding=None if data["embedding"] is None else _unvector(data["embedding"]),
        quality=FaceQuality(**quality))


def _characters(found: CharacterSamples | None) -> dict | None:
    if found is None:
        return None
    return {"frames_embedded": found.frames_embedded,
            "samples": [{"t_s": float(c.t_s), "region": c.region, "box": [int(v) for v in c.box],
                         "embedding": _vector(c.embedding), "shot_start": bool(c.shot_start)} for c in found.samples]}


def _uncharacters(data: dict | None) -> CharacterSamples | None:
    if data is None:
        return None
    return CharacterSamples([CharacterSample(t_s=c["t_s"], region=c["region"], box=tuple(c["box"]),
                                             embedding=_unvector(c["embedding"]), thumbnail=None,
                                             shot_start=c["shot_start"]) for c in data["samples"]],
                            data["frames_embedded"])


def encode(observation: Observation) -> dict:
    start_s, end_s = observation.segment
    return {
        "start_s": start_s, "end_s": end_s,
        "tracks": [{"track_id": t.track_id, "faces": [_face(f) for f in t.faces]} for t in observation.tracks],
        "decode": {k: _plain(v) for k, v in asdict(observation.decode).items()},
        "dropped_faces": dict(observation.dropped_faces),
        "timings_ms": {k: float(v) for k, v in observation.timings_ms.items()},
        "signals": [{k: _plain(v) for k, v in asdict(s).items()} for s in observation.synthetic.signals],
        "warnings": list(observation.warnings),
        "characters": _characters(observation.characters),
    }


def decode(data: dict) -> SegmentPart:
    """A stored segment; one stored before characters travelled has none (`characters` absent)."""
    return SegmentPart(
        start_s=data["start_s"], end_s=data["end_s"],
        tracks=[Track(track_id=t["track_id"], faces=[_unface(f) for f in t["faces"]]) for t in data["tracks"]],
        decode=DecodeStats(**data["decode"]), dropped_faces=dict(data["dropped_faces"]),
        timings_ms=dict(data["timings_ms"]), signals=[_signal(s) for s in data["signals"]],
        warnings=list(data["warnings"]), characters=_uncharacters(data.get("characters")))


def _signal(data: dict) -> Signal:
    """A Signal back from JSON, whose object keys are strings: per-track scores are keyed by int ids."""
    return Signal(**{**data, "tracks": {int(k): float(v) for k, v in data.get("tracks", {}).items()},
                     "discloses": tuple(data.get("discloses", ()))})
