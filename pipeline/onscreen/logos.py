"""Generator logos without text (Gemini's sparkle, the Sora app's cloud) found in a few video frames.

The library (``pipeline/data/marks/``, built by ``tools/build_mark_library.py`` from a pinned npm
package; marks.json says where each logo comes from and why we say its generator shows it) holds
each logo's shape as a 64 px alpha mask. Generators burn their logo in white and semi-transparent,
so what survives over arbitrary video is the logo's outline: the matcher correlates the image's
gradient field (Sobel x and y) with the template's, normalised (``cv2.TM_CCORR_NORMED`` over both
channels). That score does not depend on the mark's opacity or the background's brightness, and
it needs the outline's direction all round, which ordinary bright blobs (lamps, highlights, white
shirts) lack; measured against matching the intensities, it halves the highest score of ordinary
footage (docs/synthetic.md, "Logos").

Frames are shrunk so their long side is ``scan_side`` (640) and searched at ``SIZES``: the logo's
long side as a fraction of the frame's long side, 2.5-11 %. Each mark is searched only where its
generator places it (``region`` in marks.json: Gemini's sparkle bottom-right, Sora's cloud
anywhere, since it moves). A mark counts when its best score reaches ``threshold`` in at least two
frames read, or ``single_frame_threshold`` in one (``LogoMatcher.find``).
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
PAD = 3       # template border, so the outline's outer gradient (blurred) is inside the template
SIGMA = 1.0   # Gaussian blur (px at the scan size) of frame and template: tolerates the ~8 % between SIZES
MIN_CONTRAST = 8.0  # grey levels: a window whose gradients are weaker than the logo drawn at this contrast
                    # scores 0 (flat and dark areas, where rounding noise would otherwise normalise to anything)
SAME_SIZE = 1.25  # two frames' hits agree when their sizes differ by at most this ratio (one step of SIZES)


@dataclass(frozen=True)
class Logo:
    """One mark of the library: its shape and where its generator puts it."""

    name: str
    generator: str
    mask: np.ndarray                              # float32 0..1, the logo's alpha at 64 px
    region: tuple[float, float, float, float]     # where its centre may be: x0, y0, x1, y1 (fractions)
    moves: bool                                   # it changes place during a clip (Sora's)
    looks: str


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
                          tuple(entry["region"]), entry["moves"], entry["looks"]))
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


def _spectrum(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The DFT (packed, as cv2.mulSpectrums takes it) of ``image`` zero-padded to ``shape``."""
    padded = cv2.copyMakeBorder(image, 0, shape[0] - image.shape[0], 0, shape[1] - image.shape[1],
                                cv2.BORDER_CONSTANT, value=0.0)
    return cv2.dft(padded)


def _gradients(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.merge([gx, gy])


class LogoMatcher:
    """Multi-scale gradient template matching of the library's logos (see the module).

    The correlation runs in the frequency domain: the frame's gradient field is transformed once
    per frame and every template size of every logo reuses it (one multiply and one inverse
    transform each); the normalisation's window energies come from one integral image."""

    def __init__(self, logos: Sequence[Logo], threshold: float, single_frame_threshold: float,
                 scan_side: int = 640):
        self.logos = tuple(logos)
        self.threshold = threshold
        self.single_frame_threshold = single_frame_threshold
        self.scan_side = scan_side
        self._spectra: dict[tuple[str, int, int, int], tuple[np.ndarray, np.ndarray, float, int, int]] = {}

    def _template(self, logo: Logo, px: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float, int, int]:
        """The template's x and y gradient spectra (packed) at the padded ``shape``, its norm and size."""
        key = (logo.name, px, *shape)
        if key not in self._spectra:
            h, w = logo.mask.shape
            scale = px / max(h, w)
            mask = cv2.resize(logo.mask, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
            mask = cv2.copyMakeBorder(mask, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0.0)
            gx, gy = cv2.split(_gradients(cv2.GaussianBlur(mask * 255, (0, 0), SIGMA)))
            th, tw = mask.shape
            norm = float(np.sqrt((gx ** 2 + gy ** 2).sum()))
            self._spectra[key] = (_spectrum(gx, shape), _spectrum(gy, shape), norm, th, tw)
        return self._spectra[key]

    def scan(self, frame: np.ndarray, index: int = 0, t_s: float | None = None) -> list[LogoHit]:
        """Each logo's best place and score in one BGR (or grey) frame; empty for a frame too small."""
        if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
            raise ValueError(f"frame {index}: expected an HxW or HxWx3 image, got shape {frame.shape}")
        h, w = frame.shape[:2]
        if min(h, w) == 0:
            return []
        grey = frame if frame.ndim == 2 or frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.scan_side / max(h, w))
        small = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        sizes = [px for px in (round(size * max(sh, sw)) for size in SIZES)
                 if MIN_PX <= px and px + 2 * PAD <= min(sh, sw)]
        if not sizes:
            return []
        gx, gy = cv2.split(_gradients(cv2.GaussianBlur(small.astype(np.float32), (0, 0), SIGMA)))
        energy: np.ndarray = cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))
        reach = (sizes[-1] + 2 * PAD) / 2
        hits = []
        for logo in self.logos:
            # only the part of the frame where the logo can lie: its region, widened by half the biggest size
            x0, y0, x1, y1 = logo.region
            left, top = max(0, int(x0 * sw - reach)), max(0, int(y0 * sh - reach))
            right, bottom = min(sw, int(np.ceil(x1 * sw + reach))), min(sh, int(np.ceil(y1 * sh + reach)))
            ch, cw = bottom - top, right - left
            shape = (cv2.getOptimalDFTSize(ch), cv2.getOptimalDFTSize(cw))
            fx, fy = _spectrum(gx[top:bottom, left:right], shape), _spectrum(gy[top:bottom, left:right], shape)
            crop_energy = energy[top:bottom, left:right]
            best: tuple[float, tuple[int, int, int, int]] | None = None
            for px in sizes:
                tx, ty, norm, th, tw = self._template(logo, px, shape)
                if th > ch or tw > cw:
                    continue
                product = cv2.add(cv2.mulSpectrums(fx, tx, 0, conjB=True), cv2.mulSpectrums(fy, ty, 0, conjB=True))
                corr = cv2.idft(product, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)[:ch - th + 1, :cw - tw + 1]
                window = cv2.boxFilter(crop_energy, -1, (tw, th), anchor=(0, 0), normalize=False,
                                       borderType=cv2.BORDER_CONSTANT)[:ch - th + 1, :cw - tw + 1]
                window = np.maximum(window, (MIN_CONTRAST / 255 * norm) ** 2)
                scores = corr / (cv2.sqrt(window) * norm)
                _, value, _, (x, y) = cv2.minMaxLoc(scores)
                if best is None or value > best[0]:
                    x, y = x + left, y + top
                    best = (float(value), (x + PAD, y + PAD, x + tw - PAD, y + th - PAD))
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
