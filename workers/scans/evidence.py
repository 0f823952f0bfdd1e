"""Evidence images of a scan's findings, re-extracted from the uploaded video after the merge.

Segments run on different workers and pixels never travel between them (scans/codec.py), so
the merge goes back to the video on the media root: it decodes only the frames at a finding's
best evidence timestamps, upright as the scan saw them (pipeline/video.py's rotation, so the boxes
line up), and stores small JPEG crops at `<media root>/evidence/<scan id>/<identity id>/<n>.jpg`:
one folder per scan and likeness, so removing a likeness removes its images with one rmtree.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.video import fit_within, upright
from workers.data.files import write_atomic

log = logging.getLogger(__name__)

MAX_IMAGES = 3          # per finding: enough for a reviewer, few frames to decode
MAX_SIDE = 256          # pixels, long side: a face a reviewer can judge, not a biometric-grade copy
FACE_MARGIN = 0.4       # of the face box's size on each side: hair, ears and some context
CHARACTER_MARGIN = 0.05  # the image path's boxes already are the region it matched
JPEG_QUALITY = 88
_TOLERANCE_S = 0.002    # report timestamps are rounded to 1 ms; frames are 10+ ms apart
_SEEK_GAP_S = 2.0       # a target further ahead than this is reached by a seek, not by decoding through


@dataclass(frozen=True)
class Wanted:
    """One evidence entry to crop: which finding (identity) and entry, when, and where."""

    identity_id: str
    entry: int              # index into the finding's `evidence` list
    number: int             # the image's number within the finding
    t_s: float
    bbox: tuple[float, float, float, float]
    margin: float


def scan_dir(media_root: Path, scan_id: str) -> Path:
    return media_root / "evidence" / scan_id


def image_path(media_root: Path, scan_id: str, identity_id: str, number: int) -> Path:
    return scan_dir(media_root, scan_id) / identity_id / f"{number}.jpg"


def image_url(scan_id: str, identity_id: str, number: int) -> str:
    """The API path that serves the image (to the scan's platform and the likeness's owner)."""
    return f"/v1/scans/{scan_id}/evidence/{identity_id}/{number}"


def wanted(findings: list[dict]) -> list[Wanted]:
    """The best evidence entries of each finding, at most MAX_IMAGES, one per distinct instant."""
    chosen = []
    for finding in findings:
        identity_id, instants = finding["identity"]["id"], set()
        for i, entry in enumerate(finding["evidence"]):
            if len(instants) == MAX_IMAGES or entry["t_s"] in instants:
                continue
            margin = CHARACTER_MARGIN if "region" in entry else FACE_MARGIN
            chosen.append(Wanted(identity_id, i, len(instants), float(entry["t_s"]), tuple(entry["bbox"]), margin))
            instants.add(entry["t_s"])
    return chosen


def frames_at(video: Path, times: list[float]) -> dict[float, np.ndarray]:
    """Upright BGR frames at `times` (stream seconds, as the scan reported them), decoding only
    from the keyframe before each group of nearby targets; a target with no frame is left out."""
    found: dict[float, np.ndarray] = {}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        origin = float(stream.start_time * base) if stream.start_time is not None else 0.0
        frames, position = None, float("-inf")
        for target in sorted(set(times)):
            if frames is None or target < position - _TOLERANCE_S or target - position > _SEEK_GAP_S:
                container.seek(int((target + origin) / base), stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            for frame in frames:
                if frame.pts is None:
                    continue
                position = float(frame.pts * base) - origin
                if position >= target - _TOLERANCE_S:
                    if position <= target + _TOLERANCE_S:
                        found[target] = upright(frame.to_ndarray(format="bgr24"), int(frame.rotation or 0))
                    break
    return found


def crop(image: np.ndarray, bbox: tuple[float, ...], margin: float) -> np.ndarray | None:
    """The box grown by `margin` of its size on each side, cut to the frame and shrunk to MAX_SIDE."""
    x0, y0, x1, y1 = bbox
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    height, width = image.shape[:2]
    left, top = max(0, int(x0 - dx)), max(0, int(y0 - dy))
    right, bottom = min(width, int(np.ceil(x1 + dx))), min(height, int(np.ceil(y1 + dy)))
    if right - left < 2 or bottom - top < 2:
        return None
    return fit_within(image[top:bottom, left:right], MAX_SIDE)


def unavailable(finding: dict, reason: str) -> dict:
    """The finding without image references, saying why it has none."""
    evidence = [{k: v for k, v in entry.items() if k != "image"} for entry in finding["evidence"]]
    return {**finding, "evidence": evidence, "images": {"available": False, "count": 0, "reason": reason}}


def attach_images(report: dict, video: Path, media_root: Path, scan_id: str) -> None:
    """Store each finding's evidence crops and reference them from the report's findings.

    Never raises: a scan's verdict matters more than its pictures, so any failure (the upload
    vanished, a damaged stream, a full disk) leaves the findings without images and says why.
    """
    findings = report["findings"]
    if not findings:
        return
    targets = wanted(findings)
    try:
        if not video.is_file():
            raise FileNotFoundError(f"the uploaded video is gone ({video})")
        frames = frames_at(video, [w.t_s for w in targets])
        written = _write(targets, frames, media_root, scan_id)
    except Exception as exc:  # noqa: BLE001 (anything at all: the scan must still be stored)
        reason = f"evidence images unavailable: {' '.join(str(exc).split())[:300] or type(exc).__name__}"
        log.warning("scan %s: %s", scan_id, reason)
        report["findings"] = [unavailable(f, reason) for f in findings]
        report["warnings"] = [*report.get("warnings", []), reason]
        return
    for finding in findings:
        identity_id = finding["identity"]["id"]
        mine = [w for w in written if w.identity_id == identity_id]
        for w in mine:
            finding["evidence"][w.entry]["image"] = image_url(scan_id, identity_id, w.number)
        finding["images"] = ({"available": True, "count": len(mine), "reason": None} if mine else
                             {"available": False, "count": 0,
                              "reason": "no frame at the evidence timestamps could be decoded and cut"})


def _write(targets: list[Wanted], frames: dict[float, np.ndarray], media_root: Path, scan_id: str) -> list[Wanted]:
    written = []
    for w in targets:
        image = frames.get(w.t_s)
        region = None if image is None else crop(image, w.bbox, w.margin)
        if region is None:
            continue
        ok, jpeg = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("JPEG encoding failed")
        write_atomic(image_path(media_root, scan_id, w.identity_id, w.number), jpeg.tobytes())
        written.append(w)
    return written


def delete_images(media_root: Path, scan_id: str, identity_id: str) -> None:
    shutil.rmtree(scan_dir(media_root, scan_id) / identity_id, ignore_errors=True)


def keep_only(media_root: Path, scan_id: str, identity_ids: set[str]) -> None:
    """Drop the folders of likenesses the stored report does not name (a repeated merge that lost
    the race to store may have written images for findings that are not the stored ones); with none
    named (the scan was deleted meanwhile), the scan's whole folder."""
    folder = scan_dir(media_root, scan_id)
    if not identity_ids:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir():
        for child in folder.iterdir():
            if child.name not in identity_ids:
                shutil.rmtree(child, ignore_errors=True)
