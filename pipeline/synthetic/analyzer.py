"""Synthetic-media evidence for one video: each signal with its own score and evidence, fused.

Fusion (documented in docs/synthetic.md): declared provenance and a generator's watermark are
decisive. Otherwise learned and forensic signals are combined as a shrinkage-weighted mean,
    score = (w0 * prior + sum(w_i * s_i)) / (w0 + sum(w_i)),
over the signals that could be computed: with no evidence the score sits at the prior, and a
signal moves it only in proportion to the weight its measured separation earned. Missing signals
simply drop out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol
from collections.abc import Collection, Sequence

import numpy as np
from pydantic import BaseModel, Field

from pipeline.provenance.reader import Provenance
from pipeline.types import Disclosure, FaceObservation, Frame, Signal, Track, VideoInfo
from pipeline.synthetic.watermark import detect_watermark


class SyntheticConfig(BaseModel):
    prior: float = Field(0.1, ge=0.0, le=1.0, description="Score with no evidence at all.")
    prior_weight: float = Field(
        1.0, gt=0.0, description="How hard the prior resists weak signals; a signal of equal weight "
        "moves the score half-way to its own value.")
    frames_kept: int = Field(
        8, ge=1, le=64, description="Frames kept, evenly over the video, for frame-level detectors "
        "(image probe, on-screen text), and as many keyframes, spread over the video too, for the "
        "watermark. More costs inference time linearly.")
    watermark: bool = Field(True, description="Look for the dwtDct watermark of open generators.")


@dataclass(frozen=True)
class SyntheticResult:
    score: float
    signals: list[Signal]
    declared: bool          # decisive evidence: the file, its pixels or its screen say AI
    disclosure: Disclosure  # which of them said it (the uploader's own declaration is added by the decision)
    summary: str

    @property
    def face_swap(self) -> dict[int, float]:
        """The face_swap signal's score per track id (empty when it did not run)."""
        return next((dict(s.tracks) for s in self.signals if s.name == "face_swap"), {})


class FrameSignal(Protocol):
    """A detector that looks at a few whole frames (the image probe, on-screen text, an operator's own
    model); `times` are the frames' times in the video, for evidence."""

    def signal(self, frames: Sequence[np.ndarray], times: Sequence[float] | None = None) -> Signal: ...


class FaceSignals(Protocol):
    """Face-level forensics accumulated while the scan runs. `candidates`: the ids of the tracks that
    could belong to a registered likeness (None: unknown, all of them), for signals that act on a
    registered person's finding only and may skip the rest."""

    def observe(self, frame: Frame, faces: list[FaceObservation]) -> None: ...

    def signals(self, tracks: list[Track], candidates: Collection[int] | None = None) -> list[Signal]: ...


class CombinedFaceSignals:
    """Several face-level signal sources fed the same faces, reported together."""

    def __init__(self, parts: Sequence[FaceSignals]):
        self.parts = list(parts)

    def observe(self, frame: Frame, faces: list[FaceObservation]) -> None:
        for part in self.parts:
            part.observe(frame, faces)

    def signals(self, tracks: list[Track], candidates: Collection[int] | None = None) -> list[Signal]:
        return [signal for part in self.parts for signal in part.signals(tracks, candidates)]


class FrameCollector:
    """Keeps about `keep` frames spread evenly over the video and feeds face forensics."""

    def __init__(self, expected_frames: int, keep: int, face_signals: FaceSignals | None):
        self._stride = max(1, math.ceil(expected_frames / keep))
        self._keep = keep
        self._seen = 0
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []  # of `frames`, in seconds
        self.keyframes: list[np.ndarray] = []  # watermarks survive compression mostly in I-frames
        self._keyframe_numbers: list[int] = []  # of `keyframes`, counted from the video's first keyframe
        self._keyframes_seen = 0
        self._keyframe_stride = 1
        self.face_signals = face_signals

    def offer(self, frame: Frame, faces: list[FaceObservation]) -> None:
        """A frame the scan analysed, with its faces."""
        self.keep(frame)
        if self.face_signals is not None:
            self.face_signals.observe(frame, faces)

    def keep(self, frame: Frame) -> None:
        """A frame the scan decoded, analysed or not: the frame-level detectors read these, never
        a second decode."""
        if self._seen % self._stride == 0 and len(self.frames) < self._keep:
            self.frames.append(frame.image)
            self.times.append(frame.t_s)
        if frame.keyframe:
            self._keep_keyframe(frame)
        self._seen += 1

    def _keep_keyframe(self, frame: Frame) -> None:
        """Every `_keyframe_stride`-th keyframe; when `keep` are held, every other one is let go and the
        stride doubles. So the keyframes kept span the whole video, however many it has (a phone
        records one a second), and no more than `keep` images are held."""
        number = self._keyframes_seen
        self._keyframes_seen += 1
        if number % self._keyframe_stride:
            return
        if len(self.keyframes) == self._keep:
            self._keyframe_stride *= 2
            held = [i for i, n in enumerate(self._keyframe_numbers) if n % self._keyframe_stride == 0]
            self.keyframes = [self.keyframes[i] for i in held]
            self._keyframe_numbers = [self._keyframe_numbers[i] for i in held]
            if number % self._keyframe_stride:
                return
        self.keyframes.append(frame.image)
        self._keyframe_numbers.append(number)


class SyntheticAnalyzer:
    """Computes every configured signal and fuses them into one score."""

    def __init__(self, config: SyntheticConfig | None = None, frame_signals: Sequence[FrameSignal] = (),
                 face_signals_factory=None):
        self.config = config or SyntheticConfig()
        self._frame_signals = list(frame_signals)
        self._face_signals_factory = face_signals_factory

    def frame_sampler(self, info: VideoInfo, interval_s: float = 0.5) -> FrameCollector:
        expected = max(1, int(info.duration_s / interval_s) + 1)
        face_signals = self._face_signals_factory() if self._face_signals_factory else None
        return FrameCollector(expected, self.config.frames_kept, face_signals)

    def analyze(self, info: VideoInfo, provenance: Provenance, frames: FrameCollector,
                tracks: list[Track], candidates: Collection[int] | None = None) -> SyntheticResult:
        signals = [provenance_signal(provenance)]
        if self.config.watermark:
            signals.append(watermark_signal(frames.keyframes or frames.frames))
        signals += [detector.signal(frames.frames, frames.times) for detector in self._frame_signals]
        if frames.face_signals is not None:
            signals += frames.face_signals.signals(tracks, candidates)
        return fuse(signals, self.config)


def provenance_signal(provenance: Provenance) -> Signal:
    if provenance.declares_ai:
        said = "; ".join(f"{e.source} {e.field}={e.value}" for e in provenance.evidence if e.means_ai)
        return Signal("provenance", 1.0, 0.0, f"the file declares AI generation: {said}", decisive=True,
                      discloses=("metadata",))
    problems = f"; malformed metadata: {'; '.join(provenance.errors)}" if provenance.errors else ""
    if provenance.uninterpreted:  # a label we cannot read is not the absence of one: a person decides
        return Signal("provenance", None, 0.0,
                      f"AI-label field(s) present but not understood: {'; '.join(provenance.uninterpreted)}"
                      + problems, discloses=("unread_label",))
    return Signal("provenance", None, 0.0,
                  "no AI declaration in C2PA, IPTC/XMP, AIGC label or container tags (absence proves nothing)"
                  + problems)


def watermark_signal(frames: Sequence[np.ndarray]) -> Signal:
    hit = detect_watermark(frames) if frames else None
    if hit is None:
        return Signal("watermark", None, 0.0, f"no known generator watermark in {len(frames)} frames")
    return Signal("watermark", 1.0, 0.0,
                  f"{hit.scheme} watermark of {hit.payload_name} found: {hit.bit_accuracy:.0%} of bits agree, "
                  f"{hit.frames_matched}/{hit.frames_checked} frames on their own", decisive=True,
                  discloses=("embedded_mark",))


def fuse(signals: list[Signal], config: SyntheticConfig) -> SyntheticResult:
    decisive = [s for s in signals if s.decisive]
    weighted = [(s, s.score) for s in signals if s.score is not None and s.weight > 0 and not s.decisive]
    numerator = config.prior_weight * config.prior + sum(s.weight * value for s, value in weighted)
    denominator = config.prior_weight + sum(s.weight for s, _ in weighted)
    score = numerator / denominator
    if decisive:
        score = max(score, 0.99)
    strongest = sorted(weighted, key=lambda sv: sv[0].weight * sv[1], reverse=True)[:2]
    parts = [s.detail for s in decisive] + [f"{s.name} {value:.2f}" for s, value in strongest]
    summary = "; ".join(parts) if parts else "no signal found AI generation"
    disclosure = Disclosure(**{name: True for s in signals for name in s.discloses})
    return SyntheticResult(score=round(float(score), 4), signals=signals, declared=bool(decisive),
                           disclosure=disclosure, summary=summary)
