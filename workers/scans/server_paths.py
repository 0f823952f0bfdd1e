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
    stored = params.get("video")
    shown = params.get("video_name") or (Path(stored).name if stored else None)
    items = [(i["path"], i["name"]) for i in params.get("items", [])]  # a post's items, each by its own name
    encoded = json.dumps(report, ensure_ascii=False)
    for secret, public in (*items, (stored, shown), (str(media_root.resolve()), "<media>"),
                           (str(media_root), "<media>")):
        if secret and public:
            encoded = encoded.replace(json.dumps(secret, ensure_ascii=False)[1:-1],
                                      json.dumps(public, ensure_ascii=False)[1:-1])
    out = json.loads(encoded)
    if isinstance(out.get("video"), dict) and shown:
        out["video"]["path"] = shown
    for entry, (_, name) in zip(out.get("items", []), items):
        entry["video"]["path"] = name
    return out
