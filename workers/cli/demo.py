"""`likeness demo`: a real scan end to end on sample media built from package photos.

Builds a 9 s H.264 clip (a group photo panned, Yao Ming zoomed in, the basketball team with
Yao Ming as player #13), registers Yao Ming from a different photo under the owner "demo", and
scans the clip. Nothing is downloaded; the photos ship inside installed packages.
"""
from __future__ import annotations

from pathlib import Path

import cv2

from pipeline.report import build_report
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from workers.runtime import Runtime

DEMO_OWNER = "demo"
YAO_MING_AREA = (600.0, 80.0, 900.0, 300.0)  # player #13 and his neighbours in players.jpg


def build_demo_clip(path: Path) -> Path:
    image = lambda name: cv2.imread(str(package_photo(name)))  # noqa: E731
    scenes = [Scene(image("gdp.jpg"), 3.0, "pan"),
              Scene(image("t1.jpg"), 3.0, "zoom_in"),
              Scene(image("players.jpg"), 3.0, "static", crop=YAO_MING_AREA)]
    return encode_video(path, scenes, size=(960, 540), fps=25)


def run_demo(runtime: Runtime) -> dict:
    clip = runtime.settings.home / "demo" / "demo.mp4"
    if not clip.exists():
        clip.parent.mkdir(parents=True, exist_ok=True)
        build_demo_clip(clip)
    gallery = runtime.gallery
    if not any(info.name == "Yao Ming" for info, _ in gallery.identities(DEMO_OWNER)):
        enrollment = runtime.enroller.enroll([package_photo("yaoming.jpg")])
        gallery.add("Yao Ming", "person", DEMO_OWNER, "ai_if_labelled", [], enrollment)
    gallery.refresh()
    return build_report(runtime.scanner.scan(clip, gallery))
