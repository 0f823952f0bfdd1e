"""Generator logos without text (Gemini's sparkle, the Sora app's cloud) found in a few video frames.

The library (``pipeline/data/marks/``, built by ``tools/build_mark_library.py`` from a pinned npm
package; marks.json says where each logo comes from and why we say its generator shows it) holds
each logo's shape as a 64 px alpha mask. Generators burn their logo in white and semi-transparent:
the frame gets brighter where the logo's alpha is, in the logo's shape. The matcher correlates the
frame's grey levels with the alpha mask, mean-removed and normalised (``cv2.TM_CCOEFF_NORMED``), a
score that does not depend on the mark's opacity or the background's brightness. Chosen on
measurements (benchmarks/onscreen_logos.py): correlating gradient fields instead (outline matching,
blurred to tolerate the size steps) found as many drawn logos only with ~0.01-0.03 between its
threshold and ordinary footage's highest scores; grey levels keep 0.04 (two frames) and 0.09 (one).

Frames are shrunk so their long side is ``scan_side`` (640) and searched at ``SIZES``: the logo's
long side as a fraction of the frame's long side, 2.5-11 %, none under ``MIN_PX``. Each mark is
searched only where its generator places it (``region`` in marks.json: Gemini's sparkle
bottom-right, Sora's cloud anywhere, since it moves). A mark counts when its best score reaches
``threshold`` in at least two frames read that agree, or ``single_frame_threshold`` in one
(``LogoMatcher.decide``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from pipeline.onscreen.marks import OnScreenFinding

SIZES = tuple(float(s) for s in np.geomspace(0.025, 0.11, 10))  # logo long side / frame long side
MIN_PX = 16   # sizes smaller than this at the scan size are skipped: a smaller logo is a blob, not a shape
SAME_SIZE = 1.25  # two frames' hits agree when their sizes differ by at most this ratio (a step of SIZES
                  # is x1.18; the rest is rounding)


@dataclass(frozen=True)
class Logo:
    """One mark of the library: its shape and where its generator puts it."""

    name: str
    generator: str
    mask: np.ndarray                              # float32 0..1, the logo's alpha at 64 px
    region: tuple[float, float, float, float]     # where its centre may be: x0, y0, x1, y1 (fractions)
    moves: bool                                   # it changes place during a clip (Sora's)


def load_library() -> tuple[Logo, ...]:
    """The marks shipped in ``pipeline/data/marks`` (marks.json and one grey PNG per mark)."""
    folder = resources.files("pipeline") / "data" / "marks"
    library = json.loads((folder / "marks.json").read_text())
    logos = []
    for entry in library["marks"]:
        data = np.frombuffer((folder / entry["file"]).read_bytes(), np.uint8)
        mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise RuntimeError(f"mark library: {entry['file']} is not a readable image")
        logos.append(Logo(entry["name"], entry["generator"], mask.astype(np.float32) / 255,
                          tuple(entry["region"]), entry["moves"]))
    return tuple(logos)


@dataclass(frozen=True)
class LogoHit:
    """The best place for one logo in one frame."""

    logo: Logo
    score: float
    box: tuple[int, int, int, int]   # x0, y0, x1, y1 in the frame's pixels
    frame: int
    frame_size: tuple[int, int]      # (width, height)
    t_s: float | None


class LogoMatcher:
    """Multi-scale normalised template matching of the library's logos (see the module)."""

    def __init__(self, logos: Sequence[Logo], threshold: float, single_frame_threshold: float,
                 scan_side: int = 640):
        self.logos = tuple(logos)
        self.threshold = threshold
        self.single_frame_threshold = single_frame_threshold
        self.scan_side = scan_side
        self._templates: dict[tuple[str, int], np.ndarray] = {}

    def _template(self, logo: Logo, px: int) -> np.ndarray:
        """The logo's alpha scaled to ``px`` on its long side, 0..255."""
        key = (logo.name, px)
        if key not in self._templates:
            self._templates[key] = scaled_mask(logo, px) * 255
        return self._templates[key]

    def scan(self, frame: np.ndarray, index: int = 0, t_s: float | None = None) -> list[LogoHit]:
        """Each logo's best place and score in one BGR (or grey) frame; empty for a frame too small."""
        grey = small_grey(frame, self.scan_side, index)
        if grey is None:
            return []
        h, w = frame.shape[:2]
        scale = min(1.0, self.scan_side / max(h, w))  # as small_grey shrank it: boxes go back to the frame
        small = grey.astype(np.float32)
        sh, sw = small.shape[:2]
        hits = []
        for logo in self.logos:
            best: tuple[float, tuple[int, int, int, int]] | None = None
            for size in SIZES:
                px = round(size * max(sh, sw))
                if px < MIN_PX or px >= min(sh, sw):
                    continue
                template = self._template(logo, px)
                th, tw = template.shape
                # only where the logo can lie: its region, widened by the template
                x0, y0, x1, y1 = logo.region
                left, top = max(0, round(x0 * sw - tw)), max(0, round(y0 * sh - th))
                right, bottom = min(sw, round(x1 * sw + tw)), min(sh, round(y1 * sh + th))
                if right - left < tw or bottom - top < th:
                    continue
                scores = cv2.matchTemplate(small[top:bottom, left:right], template, cv2.TM_CCOEFF_NORMED)
                _, value, _, (x, y) = cv2.minMaxLoc(scores)
                if best is None or value > best[0]:
                    best = (float(value), (left + x, top + y, left + x + tw, top + y + th))
            if best is not None:
                value, (bx0, by0, bx1, by1) = best
                box = (round(bx0 / scale), round(by0 / scale), round(bx1 / scale), round(by1 / scale))
                hits.append(LogoHit(logo, value, box, index, (w, h), t_s))
        return hits

    def find(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None) -> list[OnScreenFinding]:
        """The logos seen in ``frames`` (``decide`` on each frame's ``scan``)."""
        return self.decide([hit for i, frame in enumerate(frames)
                            for hit in self.scan(frame, i, None if times is None else times[i])])

    def decide(self, hits: Sequence[LogoHit]) -> list[OnScreenFinding]:
        """A logo counts when it scores at least ``threshold`` in two frames or more that agree (about
        the same size; the same place too unless the logo moves), or ``single_frame_threshold`` in
        one. Each agreeing frame is a finding (kind "mark", its generator, where, the score)."""
        findings = []
        for logo in self.logos:
            seen = [h for h in hits if h.logo is logo and h.score >= self.threshold]
            counted = [h for h in seen if h.score >= self.single_frame_threshold
                       or any(_agree(h, other) for other in seen if other.frame != h.frame)]
            findings += [OnScreenFinding("mark", logo.generator, f"logo:{logo.name}", f"[{logo.name} logo]",
                                         round(h.score, 3), h.box, h.frame, h.frame_size, h.t_s) for h in counted]
        return findings


def scaled_mask(logo: Logo, px: int) -> np.ndarray:
    """The logo's alpha (0..1) scaled to ``px`` on its long side."""
    h, w = logo.mask.shape
    scale = px / max(h, w)
    return cv2.resize(logo.mask, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def small_grey(frame: np.ndarray, side: int, index: int = 0) -> np.ndarray | None:
    """The frame in grey, shrunk to at most `side` on its long side; None for an empty frame."""
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
        raise ValueError(f"frame {index}: expected an HxW or HxWx3 image, got shape {frame.shape}")
    h, w = frame.shape[:2]
    if min(h, w) == 0:
        return None
    grey = frame if frame.ndim == 2 or frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    scale = min(1.0, side / max(h, w))
    return cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _agree(a: LogoHit, b: LogoHit) -> bool:
    """Two frames' hits of one logo that can be the same mark."""
    side_a, side_b = a.box[2] - a.box[0], b.box[2] - b.box[0]
    if max(side_a, side_b) > SAME_SIZE * min(side_a, side_b):
        return False
    if a.logo.moves:
        return True
    ix = max(0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    iy = max(0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    return ix * iy >= 0.5 * side_a * (a.box[3] - a.box[1])
