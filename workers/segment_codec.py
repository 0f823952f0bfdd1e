"""A segment's scan result ⇄ JSON, so a segment scanned on one worker can be merged on another.

Only what the merge needs travels: tracks with every face's embedding (float32, base64) and
quality, decode counts, dropped faces, timings and synthetic signals. Pixels never do.
"""
from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.scan import ScanResult
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


def _face(face: FaceObservation) -> dict:
    return {"t_s": float(face.t_s), "frame_index": int(face.frame_index), "bbox": _array(face.bbox),
            "det_score": float(face.det_score), "landmarks": _array(face.landmarks),
            "embedding": None if face.embedding is None else  # linked by overlap alone, never embedded
            base64.b64encode(np.asarray(face.embedding, dtype=np.float32).tobytes()).decode("ascii"),
            "quality": {k: _plain(v) for k, v in asdict(face.quality).items()}}


def _unface(data: dict) -> FaceObservation:
    quality = data["quality"]
    return FaceObservation(
        t_s=data["t_s"], frame_index=data["frame_index"], bbox=np.array(data["bbox"], dtype=np.float32),
        det_score=data["det_score"], landmarks=np.array(data["landmarks"], dtype=np.float32).reshape(5, 2),
        embedding=None if data["embedding"] is None else
        np.frombuffer(base64.b64decode(data["embedding"]), dtype=np.float32).copy(),
        quality=FaceQuality(**quality))


def encode(result: ScanResult) -> dict:
    start_s, end_s = result.segment
    return {
        "start_s": start_s, "end_s": end_s,
        "tracks": [{"track_id": t.track_id, "faces": [_face(f) for f in t.faces]} for t in result.tracks],
        "decode": {k: _plain(v) for k, v in asdict(result.decode).items()},
        "dropped_faces": dict(result.dropped_faces),
        "timings_ms": {k: float(v) for k, v in result.timings_ms.items()},
        "signals": [{k: _plain(v) for k, v in asdict(s).items()} for s in result.synthetic.signals],
        "warnings": list(result.warnings),
    }


def decode(data: dict) -> SegmentPart:
    return SegmentPart(
        start_s=data["start_s"], end_s=data["end_s"],
        tracks=[Track(track_id=t["track_id"], faces=[_unface(f) for f in t["faces"]]) for t in data["tracks"]],
        decode=DecodeStats(**data["decode"]), dropped_faces=dict(data["dropped_faces"]),
        timings_ms=dict(data["timings_ms"]), signals=[Signal(**s) for s in data["signals"]],
        warnings=list(data["warnings"]))
