"""One scan, in process, in two steps: observe (probe → sample → detect → embed → track → score) and
decide (match → findings → verdict). A segmented scan observes each segment apart and decides once."""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Callable, Iterator

import numpy as np

from pipeline.characters import CharacterMatcher, CharacterResult, CharacterSample
from pipeline.config import ScanConfig
from pipeline.faces.detector import FaceDetector, min_side
from pipeline.faces.embedder import FaceEmbedder
from pipeline.faces.align import align_face
from pipeline.faces.identify import GallerySearcher, candidate_track_ids, decide_tracks
from pipeline.policy import (AiEvidence, Finding, PolicyConfig, Verdict, assess_ai, category_for, decide_finding,
                             evidence_for, match_confidence, verdict)
from pipeline.provenance.reader import Provenance, read_provenance
from pipeline.faces.quality import assess
from pipeline.synthetic.analyzer import SyntheticAnalyzer, SyntheticResult
from pipeline.faces.tracking import FaceTracker, same_faces
from pipeline.types import FaceObservation, Frame, Track, TrackMatch, VideoInfo
from pipeline.keyframes import KeyframeFirst
from pipeline.video import DecodeStats, VideoInputError, probe, sample_frames, unchanged

ProgressFn = Callable[[float, float], None]  # (seconds of video done, seconds in total)


@dataclass(frozen=True)
class CharacterSamples:
    """The character path's embedded crops of one pass, not yet decided: segments scanned apart pool
    their samples and are decided together, so a character crossing a cut becomes one track."""

    samples: list[CharacterSample]
    frames_embedded: int


@dataclass
class Observation:
    """What one pass over a video, or over one time segment of it, saw: everything that needs the
    pixels and nothing that needs the face gallery. `Scanner.decide` turns it into a ScanResult;
    the observations of segments scanned apart are merged into one first, so a segmented scan is
    decided by the same code as an in-process one."""

    info: VideoInfo
    provenance: Provenance
    tracks: list[Track]
    synthetic: SyntheticResult          # this pass's signals, fused
    decode: DecodeStats
    dropped_faces: dict[str, int]
    timings_ms: dict[str, float]
    segment: tuple[float, float | None] = (0.0, None)
    warnings: list[str] = field(default_factory=list)
    characters: CharacterSamples | None = None  # None when no character was registered


@dataclass
class ScanResult:
    info: VideoInfo
    frames_sampled: int
    tracks: list[Track]
    matches: list[TrackMatch]
    provenance: Provenance
    synthetic: SyntheticResult
    ai: AiEvidence
    findings: list[Finding]
    verdict: Verdict
    timings_ms: dict[str, float]
    dropped_faces: dict[str, int]
    decode: DecodeStats
    gallery_version: int
    segment: tuple[float, float | None] = (0.0, None)
    warnings: list[str] = field(default_factory=list)
    characters: CharacterResult | None = None  # the image path's tracks, when characters are registered


class _Stopwatch:
    def __init__(self, ms: dict[str, float] | None = None) -> None:
        self.ms: dict[str, float] = defaultdict(float, ms or {})

    def add(self, stage: str, started: float) -> None:
        self.ms[stage] += (time.perf_counter() - started) * 1000.0


class Scanner:
    """Holds the models (loaded once) and scans videos against a gallery: `observe` a video (or a
    segment of it), then `decide` what was observed."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, config: ScanConfig,
                 synthetic: SyntheticAnalyzer, policy: PolicyConfig | None = None,
                 characters: CharacterMatcher | None = None):
        self.detector = detector
        self.embedder = embedder
        self.config = config
        self.synthetic = synthetic
        self.policy = policy or PolicyConfig()
        self.characters = characters

    def scan(self, path: Path, gallery: GallerySearcher | None, uploader: str | None = None,
             progress: ProgressFn | None = None, start_s: float = 0.0, end_s: float | None = None,
             declared_ai: bool = False) -> ScanResult:
        return self.decide(self.observe(path, progress, start_s, end_s, gallery=gallery), gallery, uploader,
                           declared_ai)

    def observe(self, path: Path, progress: ProgressFn | None = None, start_s: float = 0.0,
                end_s: float | None = None, info: VideoInfo | None = None,
                gallery: GallerySearcher | None = None) -> Observation:
        """Sample, detect, embed and track faces; collect synthetic-media evidence and character
        samples. No identity is decided here: a segment's observation waits for the merge.
        `info`: the caller's probe of `path` (one that probes first to fail fast), not repeated.
        `gallery`: the likenesses the decision will search, when known; then the face-swap probe
        scores only the tracks that could belong to one of them (`candidate_track_ids`), since its
        score acts on a registered person's finding only. None: every track is scored."""
        watch = _Stopwatch()
        if info is None:
            started = time.perf_counter()
            info = probe(Path(path), self.config.sampling)
            watch.add("probe", started)
        started = time.perf_counter()
        provenance = read_provenance(info.path)
        watch.add("provenance", started)
        tracker = FaceTracker(self.config.tracking)
        dropped: Counter[str] = Counter()
        stats = DecodeStats()
        sampling = self.config.sampling
        coarse = _CoarseToFine(self.config)
        started = time.perf_counter()
        keyframe_first = KeyframeFirst.plan(info, sampling, start_s, end_s) if coarse.enabled else None
        watch.add("gop_layout", started)
        spacing = sampling.coarse_interval_s if keyframe_first else sampling.interval_s  # of the samples seen
        frames = self.synthetic.frame_sampler(info, spacing)
        characters = self.characters.start() if self.characters is not None else None

        def analyse(frame: Frame, faces: list[FaceObservation]) -> None:
            for face in faces:
                if face.quality.reason is not None:
                    dropped[face.quality.reason.split(" (")[0]] += 1
            started = time.perf_counter()
            tracker.update(faces, frame.t_s, cut=frame.reason == "scene_cut")
            watch.add("track", started)
            frames.offer(frame, faces)
            if characters is not None:
                started = time.perf_counter()
                characters.offer(frame, faces)
                watch.add("characters", started)

        source = keyframe_first.samples(stats) if keyframe_first else \
            sample_frames(info, sampling, stats, start_s, end_s)
        sampled = _prefetch(source, watch)

        def decoded_between(until: Frame | None) -> list[Frame]:
            assert keyframe_first is not None, "only keyframe-first samples leave stretches undecoded"
            started = time.perf_counter()
            held = keyframe_first.between(until)
            watch.add("decode_between", started)
            return held

        for frame, between in coarse.steps(sampled):
            faces: list[FaceObservation] = []
            if frame is not None:
                repeated = coarse.repeated(frame)
                if repeated is None:  # a keyframe-first sample may open a shot (known only if decoded between)
                    faces = self._faces(frame, watch, dropped, tracker, embed_all=keyframe_first is not None)
                    coarse.detected(frame)
                else:
                    faces = repeated
                    stats.unchanged += 1
            if coarse.refine(faces, frame is None) or (keyframe_first is not None and keyframe_first.cut_unseen(frame)):
                if keyframe_first is not None:
                    between = decoded_between(frame)
                for held in between:
                    analyse(held, self._faces(held, watch, dropped, tracker))
            else:  # the same faces before and after: the frames between are kept, not analysed; the
                # character path skips them too (it crops around a frame's own faces, never another's)
                stats.skipped += len(between)
                for held in between:
                    frames.keep(held)
            if frame is not None:
                analyse(frame, faces)
                coarse.previous = faces
                if keyframe_first is not None:
                    keyframe_first.last = frame
                if progress:
                    progress(frame.t_s - start_s, (end_s or info.duration_s) - start_s)
        if keyframe_first is not None:
            if coarse.refine([], True):  # a face still on screen at the last keyframe
                for held in decoded_between(None):
                    analyse(held, self._faces(held, watch, dropped, tracker))
            keyframe_first.finish(stats)
        self._check_complete(info, stats, start_s, end_s)
        tracks = tracker.finish()
        started = time.perf_counter()
        candidates = candidate_track_ids(tracks, gallery, self.config.match) if gallery is not None else None
        synthetic = self.synthetic.analyze(info, provenance, frames, tracks, candidates)
        watch.add("synthetic", started)
        samples = None
        if characters is not None:  # embed the crops still pending
            started = time.perf_counter()
            samples = CharacterSamples(characters.finish(), characters.frames_embedded)
            watch.add("characters", started)
        warnings = [stats.corrupt_tail] if stats.corrupt_tail else []
        return Observation(info=info, provenance=provenance, tracks=tracks, synthetic=synthetic, decode=stats,
                           dropped_faces=dict(dropped), timings_ms=dict(watch.ms), segment=(start_s, end_s),
                           warnings=warnings, characters=samples)

    def decide(self, observation: Observation, gallery: GallerySearcher | None,
               uploader: str | None = None, declared_ai: bool = False) -> ScanResult:
        """Identity decisions per track (face and character paths), findings and the verdict,
        against the gallery as it is now. `declared_ai`: the uploader declared the content AI-generated."""
        watch = _Stopwatch(observation.timings_ms)
        tracks = observation.tracks
        characters = self.characters
        samples = observation.characters if characters is not None else None
        started = time.perf_counter()
        matches = decide_tracks(tracks, gallery, self.config.match)
        if characters is not None and samples is not None:  # face-path decisions about characters
            matches = characters.review(tracks, matches, gallery, self.config.match)
        watch.add("match", started)
        synthetic = observation.synthetic
        disclosure = replace(synthetic.disclosure, uploader=declared_ai)
        ai = assess_ai(synthetic.score, synthetic.declared, disclosure, synthetic.summary, synthetic.face_swap,
                       self.policy)
        character_result = None
        if characters is not None and samples is not None:  # search every sample at once, decide character tracks
            started = time.perf_counter()
            character_result = characters.decide(samples.samples, samples.frames_embedded,
                                                      max((t.track_id for t in tracks), default=0) + 1)
            watch.add("characters", started)
        started = time.perf_counter()
        findings = self._findings(tracks, matches, ai, uploader)
        if characters is not None and character_result is not None:  # the image path's tracks join the findings
            findings, character_result = characters.findings(findings, character_result, ai, uploader)
        result_verdict = verdict(findings, ai, self.policy)
        watch.add("decide", started)
        return ScanResult(info=observation.info, frames_sampled=observation.decode.sampled, tracks=tracks,
                          matches=matches, provenance=observation.provenance, synthetic=synthetic, ai=ai,
                          findings=findings, verdict=result_verdict, timings_ms=dict(watch.ms),
                          dropped_faces=observation.dropped_faces, decode=observation.decode,
                          gallery_version=getattr(gallery, "version", 0), segment=observation.segment,
                          warnings=observation.warnings, characters=character_result)

    def _faces(self, frame: Frame, watch: _Stopwatch, dropped: Counter[str], tracker: FaceTracker,
               embed_all: bool = False) -> list[FaceObservation]:
        """Detect, align, assess and embed. Faces below the minimum size are counted and dropped
        before embedding: they cost as much as large ones and can never be used. `embed_all`: every
        face is embedded, as on a cut (a keyframe-first sample's cut is known only later)."""
        started = time.perf_counter()
        found = self.detector.detect(frame.image)
        watch.add("detect", started)
        detections = [d for d in found if min_side(d.bbox) >= self.config.quality.min_face_px]
        if len(detections) < len(found):
            dropped["face too small"] += len(found) - len(detections)
        if not detections:
            return []
        started = time.perf_counter()
        crops = [align_face(frame.image, d.landmarks) for d in detections]
        qualities = [assess(d, c, self.config.quality) for d, c in zip(detections, crops)]
        cut = frame.reason == "scene_cut" or embed_all
        wanted = [i for i, d in enumerate(detections) if tracker.needs_embedding(d.bbox, frame.t_s, cut)]
        computed = self.embedder.embed([crops[i] for i in wanted])
        embeddings: list[np.ndarray | None] = [None] * len(detections)
        for i, embedding in zip(wanted, computed):
            embeddings[i] = embedding
        watch.add("embed", started)
        return [FaceObservation(t_s=frame.t_s, frame_index=frame.index, bbox=d.bbox, det_score=d.score,
                                landmarks=d.landmarks, embedding=e, quality=q, crop=c)
                for d, c, q, e in zip(detections, crops, qualities, embeddings)]

    def _check_complete(self, info: VideoInfo, stats: DecodeStats, start_s: float, end_s: float | None) -> None:
        """A file whose data stops well before its declared end is truncated: refuse it."""
        if stats.decoded == 0:
            raise VideoInputError(f"{info.path}: no frame could be decoded in the requested range")
        expected_end = min(end_s, info.duration_s) if end_s is not None else info.duration_s
        slack = max(1.0, 2 * self.config.sampling.interval_s, 3.0 / max(info.fps, 1.0))
        if expected_end > 0 and stats.last_t_s < expected_end - slack:
            why = stats.corrupt_tail or "data ends early"
            raise VideoInputError(
                f"{info.path}: truncated or damaged: decodable video ends at {stats.last_t_s:.1f} s of a "
                f"declared {expected_end:.1f} s ({why})")

    def _findings(self, tracks: list[Track], matches: list[TrackMatch], ai: AiEvidence,
                  uploader: str | None) -> list[Finding]:
        """One finding per registered identity seen, from its accepted (or uncertain) tracks."""
        by_identity: dict[str, list[tuple[Track, TrackMatch]]] = defaultdict(list)
        for track, match in zip(tracks, matches):
            if match.status in ("match", "weak") and match.candidate is not None:
                by_identity[match.candidate.id].append((track, match))
        findings = []
        for pairs in by_identity.values():
            accepted = [(t, m) for t, m in pairs if m.status == "match"]
            chosen = accepted or pairs
            best = max(chosen, key=lambda tm: tm[1].similarity)[1]
            identity = best.candidate
            if identity is None:  # match and weak decisions always name their candidate
                continue
            own = evidence_for(ai, [t.track_id for t, _ in chosen], self.policy)
            action, reasons = decide_finding(identity, best, own, uploader)
            if not accepted and action.value == "allow":
                continue  # an uncertain resemblance that changes nothing is not a finding
            confidence = match_confidence(best.similarity, self.config.match.threshold,
                                          self.config.match.review_threshold)
            findings.append(Finding(identity=identity, category=category_for(identity, own),
                                    confidence=round(confidence, 3), tracks=[t for t, _ in chosen],
                                    matches=[m for _, m in chosen], match=best,
                                    action=action, reasons=reasons))
        return sorted(findings, key=lambda f: f.tracks[0].start_s)


class _CoarseToFine:
    """Which sampled frames are analysed. Coarse samples (every `coarse_interval_s`, every cut and
    keyframe sample, the first) always are; the samples between two coarse ones are held and analysed
    only when the faces of the two differ (`same_faces`), since only then can an appearance start or
    end between them. Frames come out in time order, so the tracker sees what it saw before."""

    def __init__(self, config: ScanConfig):
        self._every = config.sampling.coarse_interval_s
        self.enabled = self._every > config.sampling.interval_s + 1e-6
        self._tracking = config.tracking
        self._next_coarse = -float("inf")
        self._max_step = config.sampling.unchanged_max_step
        self._detected_luma: np.ndarray | None = None  # of the last coarse sample the detector saw
        self.previous: list[FaceObservation] = []  # faces of the last coarse sample analysed

    def steps(self, sampled: Iterator[Frame]) -> Iterator[tuple[Frame | None, list[Frame]]]:
        """(coarse frame, the held frames before it); a final (None, held) when the video ends."""
        held: list[Frame] = []
        for frame in sampled:
            if not self.enabled:
                yield frame, held
                continue
            if frame.reason == "interval" and frame.t_s < self._next_coarse - 1e-6:
                held.append(frame)
                continue
            if self._next_coarse == -float("inf"):
                self._next_coarse = frame.t_s
            while self._next_coarse <= frame.t_s + 1e-6:  # a grid from the first frame: gaps never drift
                self._next_coarse += self._every
            yield frame, held
            held = []
        if held:
            yield None, held

    def repeated(self, frame: Frame) -> list[FaceObservation] | None:
        """The last coarse sample's faces moved to `frame` when its picture has not changed since the last
        coarse sample the detector saw (`unchanged`: slides, title cards, still shots); None when `frame`
        must be detected. A cut's sample is always detected."""
        if not self.enabled or frame.reason == "scene_cut" or \
                not unchanged(self._detected_luma, frame.luma, self._max_step):
            return None
        return [replace(face, t_s=frame.t_s, frame_index=frame.index, crop=None) for face in self.previous]

    def detected(self, frame: Frame) -> None:
        self._detected_luma = frame.luma

    def refine(self, faces: list[FaceObservation], at_end: bool) -> bool:
        """Whether the held frames before `faces`' frame must be analysed (at the end: whether any face
        was still on screen, since its track's end lies among them)."""
        if at_end:
            return bool(self.previous)
        return not same_faces(self.previous, faces, self._tracking.reuse_iou, self._tracking.link_similarity,
                              self._tracking.relink_similarity)


_END = object()


def _prefetch(frames: Iterator[Frame], watch: _Stopwatch, depth: int = 4) -> Iterator[Frame]:
    """Decode in a background thread (PyAV releases the GIL) so it overlaps with inference."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        started = time.perf_counter()
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as exc:  # re-raised in the consumer thread
            buffer.put(exc)
        finally:
            watch.add("decode_thread", started)

    worker = threading.Thread(target=produce, name="likeness-decode", daemon=True)
    worker.start()
    try:
        while True:
            started = time.perf_counter()
            item = buffer.get()
            watch.add("decode_wait", started)
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
