"""A scan's report without the server's paths, as it is stored and as clients see it.

The pipeline names the file it read (`video.path`, FFmpeg's messages in provenance errors, evidence
warnings); in the service that is a path under the media root, which no client and no copy of the
database should hold. Every occurrence of the stored file's path becomes the name the platform gave
(its upload's file name, or the path it submitted in its own folder); the media root becomes
"<media>".
"""
from __future__ import annotations

import json
from pathlib import Path


def without_server_paths(report: dict, params: dict, media_root: Path) -> dict:
    """A copy of `report` naming every video as the platform did, with no server path left."""
    shown = _shown_name(params)
    encoded = json.dumps(report, ensure_ascii=False)
    for secret, public in (*_uploads(params), (str(media_root.resolve()), "<media>"), (str(media_root), "<media>")):
        encoded = encoded.replace(json.dumps(secret, ensure_ascii=False)[1:-1],
                                  json.dumps(public, ensure_ascii=False)[1:-1])
    out = json.loads(encoded)
    if isinstance(out.get("video"), dict) and shown:
        out["video"]["path"] = shown
    for entry, item in zip(out.get("items", []), params.get("items", [])):
        entry["video"]["path"] = item["name"]
    return out


def uploads_named(text: str, params: dict) -> str:
    """`text` (a job's failure reason) with each stored upload's path replaced by the name the platform
    gave it: "holiday.mp4: not a readable video container", not the server's file name."""
    for secret, public in _uploads(params):
        text = text.replace(secret, public)
    return text


def _shown_name(params: dict) -> str | None:
    stored = params.get("video")
    return params.get("video_name") or (Path(stored).name if stored else None)


def _uploads(params: dict) -> list[tuple[str, str]]:
    """(stored path, the platform's name) for a post's items and for the job's video, items first
    (they lie inside the post's folder, which is its `video`)."""
    pairs = [(i["path"], i["name"]) for i in params.get("items", [])]
    stored, shown = params.get("video"), _shown_name(params)
    if stored and shown:
        pairs.append((stored, shown))
    return [(secret, public) for secret, public in pairs if secret and public]
