"""The "onscreen_text" signal: a generator's visible mark or an explicit AI label read in the frames.

It reads the text in a few of the frames the scan already keeps (``FrameCollector.frames``, spread
evenly over the video; nothing is decoded again) with ``pipeline.onscreen.ocr.OcrEngine`` and
matches it with ``pipeline.onscreen.marks``; in the same frames ``pipeline.onscreen.logos`` looks for
generator logos without text (Gemini's sparkle, the Sora app's cloud: a small library of marks, each
with its source). A mark ("Sora @name", "MADE WITH PIKA", "可灵AI", or a logo seen in two frames
read) is decisive evidence that discloses ``on_screen_mark``; a label ("AI生成", "AI-generated")
discloses ``on_screen_label``, which also means a viewer is told (docs/synthetic.md, "Who says it is
AI"). Finding nothing proves nothing: marks are cropped, blurred or painted over, and only the
library's logos are known.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from pydantic import BaseModel, Field

from pipeline.onscreen.logos import LogoMatcher, load_library
from pipeline.onscreen.marks import OnScreenFinding, find_marks
from pipeline.onscreen.ocr import DET_MAX_SIDE, OcrEngine
from pipeline.types import Signal

NAME = "onscreen_text"
MAX_LISTED = 8  # findings spelled out in the signal's detail; the rest are counted


class OnScreenConfig(BaseModel):
    """Reading on-screen text for generator marks and AI labels (docs/synthetic.md, "On-screen text")."""

    enabled: bool = Field(True, description="Read the text in a few kept frames for generator marks and AI labels.")
    max_frames: int = Field(
        4, ge=1, le=64, description="Frames read, evenly spread over the kept ones (SyntheticConfig.frames_kept, "
        "8 by default). Each costs ~0.15-0.25 s of one CPU core, ~0.04 s more per line of text not seen "
        "in an earlier frame; more frames catch marks that move (Sora's) or show only part of the time.")
    min_confidence: float = Field(
        0.8, ge=0.5, le=1.0, description="Recogniser confidence a line needs before its words count. "
        "Marks and labels drawn on real footage and re-encoded read at 0.90-1.00; misread ordinary "
        "text sits lower.")
    det_max_side: int = Field(
        DET_MAX_SIDE, ge=320, le=1920, multiple_of=32, description="Long side of the text detector's "
        "input. 960 finds text ~10 px high in 540p-1080p frames; cost grows with its square.")
    logos: bool = Field(True, description="Also look for generator logos without text (Gemini's sparkle, the Sora "
                        "app's cloud; pipeline/data/marks) in the same frames.")
    logo_threshold: float = Field(
        0.85, ge=0.3, le=1.0, description="Logo match score (normalised correlation of grey levels with the "
        "logo's shape, 0..1) a logo needs in at least two frames read that agree on its size (and place, for a "
        "logo that stays put). The highest score of ordinary footage and photos was 0.81 (84 false marks at 0.80, "
        "none from 0.82); 141 of 144 logos drawn white at 40-90 % into real footage and re-encoded were found "
        "(benchmarks/results/onscreen_logos.json).")
    logo_single_frame_threshold: float = Field(
        0.9, ge=0.3, le=1.01, description="Logo match score that counts in a single frame read (1.01: never).")


class OnScreenTextSignal:
    """A FrameSignal: decisive when a generator's mark or an AI label is read, else no score."""

    def __init__(self, engine: OcrEngine, config: OnScreenConfig | None = None):
        self._engine = engine
        self.config = config or OnScreenConfig()
        self._logos = (LogoMatcher(load_library(), self.config.logo_threshold, self.config.logo_single_frame_threshold)
                       if self.config.logos else None)

    def findings(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None
                 ) -> tuple[list[OnScreenFinding], int]:
        """The marks and labels in up to ``max_frames`` of the frames, and how many frames were read."""
        if not frames:
            return [], 0
        picks = sorted(set(np.linspace(0, len(frames) - 1, min(self.config.max_frames, len(frames)))
                           .round().astype(int).tolist()))
        read = [frames[i] for i in picks]
        read_times = None if times is None else [times[i] for i in picks]
        found = find_marks(self._engine.read(read, read_times), self.config.min_confidence)
        if self._logos is not None:
            found += self._logos.find(read, read_times)
        # Report positions among all kept frames, not among those read.
        return [replace(f, frame=picks[f.frame]) for f in found], len(picks)

    def signal(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None) -> Signal:
        found, read = self.findings(frames, times)
        return self.to_signal(found, read, len(frames))

    @staticmethod
    def to_signal(found: Sequence[OnScreenFinding], read: int, kept: int) -> Signal:
        """The report's Signal for findings in ``read`` of ``kept`` frames."""
        if not found:
            return Signal(NAME, None, 0.0, f"no mark or AI label read in {read} frames")
        discloses = tuple(name for name, kind in (("on_screen_label", "label"), ("on_screen_mark", "mark"))
                          if any(f.kind == kind for f in found))
        listed = "; ".join(_describe(f, kept) for f in found[:MAX_LISTED])
        more = f"; {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
        return Signal(NAME, 1.0, 0.0, f"on screen in {read} frames read: {listed}{more}", decisive=True,
                      discloses=discloses)


def _describe(f: OnScreenFinding, kept: int) -> str:
    logo = f.pattern.startswith("logo:")
    what = (f"AI label {f.text!r}" if f.kind == "label" else f"{f.generator} logo {f.pattern[5:]!r}" if logo
            else f"{f.generator} mark {f.text!r}")
    if f.handle:
        what += f" (@{f.handle})"
    when = f"at {f.t_s:.1f} s" if f.t_s is not None else f"in kept frame {f.frame + 1}/{kept}"
    x0, y0, x1, y1 = f.box
    w, h = f.frame_size
    score = "match score" if logo else "confidence"
    return f"{what} {when}, {f.position} ({x0},{y0})-({x1},{y1}) of {w}x{h}, {score} {f.confidence:.2f}"
