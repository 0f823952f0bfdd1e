"""Typed records that flow between the pipeline's stages."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration_s: float
    fps: float
    width: int          # upright width, after rotation metadata is applied
    height: int
    rotation: int       # degrees the stored picture is turned to display upright
    codec: str
    frame_count: int    # as declared by the container; 0 when unknown
    has_audio: bool


class Frame:
    """One sampled frame. `image` is upright BGR uint8; a decoded frame is converted on first use
    (`convert`), since about half the samples are neither analysed nor kept (a 1080p conversion costs
    4.6 ms of CPU)."""

    __slots__ = ("index", "t_s", "reason", "keyframe", "luma", "_image", "_convert")

    def __init__(self, index: int, t_s: float, image: np.ndarray | None = None, reason: str = "interval",
                 keyframe: bool = False, *, convert: Callable[[], np.ndarray] | None = None,
                 luma: np.ndarray | None = None):
        if (image is None) == (convert is None):
            raise ValueError("a Frame needs either its image or a conversion that makes it, not both")
        self.index = index          # position among decoded frames of the stream
        self.t_s = t_s              # presentation time from the stream's own clock
        self.reason = reason        # "interval" | "scene_cut" | "keyframe" | "image"
        self.keyframe = keyframe    # an intra-coded frame: carries fragile invisible watermarks best
        self.luma = luma            # every n-th luma value of the stored picture (video.unchanged), if decoded
        self._image = image
        self._convert = convert

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            assert self._convert is not None, "set together in __init__"
            self._image, self._convert = self._convert(), None
        return self._image


@dataclass(frozen=True)
class FaceQuality:
    size_px: float
    det_score: float
    sharpness: float
    yaw: float          # degrees; > 0 the nose points to image right
    pitch: float        # degrees; > 0 looking up
    usable: bool        # carries identity (big enough, a confident detection); pose and blur only weigh
    reason: str | None  # why it is not usable, in words; None when usable
    weight: float = 1.0  # how much this face counts in its track's identity decision, 0..1
    band: str = "frontal"  # frontal | three_quarter | profile | blurred | small (for reports and benchmarks)


FaceKey = tuple[float, bytes]


@dataclass
class FaceObservation:
    """One detected face in one sampled frame, with its embedding."""

    t_s: float
    frame_index: int
    bbox: np.ndarray        # x1, y1, x2, y2 in upright frame pixels
    det_score: float
    landmarks: np.ndarray   # (5, 2)
    embedding: np.ndarray | None  # (512,) L2-normalised; None when linked to its track by overlap alone
    quality: FaceQuality
    crop: np.ndarray | None = None  # aligned 112x112 BGR until the tracker has taken it

    @property
    def vector(self) -> np.ndarray:
        """The embedding of a face known to be embedded (usable or embedded faces of a track)."""
        if self.embedding is None:
            raise ValueError(f"face at {self.t_s:.2f} s was linked by overlap and has no embedding")
        return self.embedding

    @property
    def evidence_score(self) -> float:
        """How good this face is as evidence: usable first, then size times confidence."""
        return (1000.0 if self.quality.usable else 0.0) + self.quality.size_px * self.det_score

    @property
    def key(self) -> FaceKey:
        """Identifies this observation across a scan's stages (frame signals observe it before
        the tracks that will hold it exist): its frame's time, unique within an observation whichever
        decode gave the frame (keyframe-first decodes stretches apart), and its box."""
        return self.t_s, np.asarray(self.bbox, dtype=np.float32).tobytes()


@dataclass
class Track:
    track_id: int
    faces: list[FaceObservation] = field(default_factory=list)
    thumbnail: np.ndarray | None = None   # aligned crop of the best face seen, for evidence
    thumbnail_score: float = -1.0

    @property
    def start_s(self) -> float:
        return self.faces[0].t_s

    @property
    def end_s(self) -> float:
        return self.faces[-1].t_s

    @property
    def usable_faces(self) -> list[FaceObservation]:
        """Faces fit for identity decisions: usable quality and embedded."""
        return [f for f in self.faces if f.quality.usable and f.embedding is not None]

    @property
    def embedded_faces(self) -> list[FaceObservation]:
        return [f for f in self.faces if f.embedding is not None]


@dataclass(frozen=True)
class ReferenceHit:
    """One gallery reference returned by a search."""

    identity_id: str
    similarity: float


@dataclass(frozen=True)
class IdentityInfo:
    id: str
    name: str
    kind: str           # "person" | "character"
    owner: str
    policy: str
    authorized_uploaders: tuple[str, ...] = ()
    match_threshold: float | None = None  # this likeness's own, stricter threshold (known look-alikes)


@dataclass(frozen=True)
class IdentityScore:
    identity: IdentityInfo
    similarity: float


@dataclass(frozen=True)
class TrackMatch:
    """The open-set decision for one track."""

    identity: IdentityInfo | None        # accepted identity, None when no decision
    similarity: float                    # of the best candidate
    margin: float                        # best minus runner-up
    vote_fraction: float
    candidate: IdentityInfo | None       # best candidate even when rejected
    status: str                          # "match" | "weak" | "no_match" | "unusable"
    reason: str
    face_similarities: tuple[float, ...] = ()  # each usable face's similarity to the candidate


@dataclass(frozen=True)
class Signal:
    """One piece of synthetic-media evidence, for the report and the fusion.

    `score` is in [0, 1] (1: AI-generated or manipulated) or None when the signal could not be
    computed; `weight` is how much the fusion trusts it, from its measured separation.
    """

    name: str
    score: float | None
    weight: float
    detail: str
    decisive: bool = False   # declared provenance, a generator's watermark, or a mark or label on screen
    tracks: dict[int, float] = field(default_factory=dict)  # a face-level signal's score per track id
    discloses: tuple[str, ...] = ()  # the Disclosure fields this signal's finding sets


@dataclass(frozen=True)
class Disclosure:
    """Who or what says the content is AI, kept apart because the duties differ (docs/synthetic.md): an
    implicit label in metadata is invisible to viewers, an on-screen label is seen, a generator's mark is
    evidence but no declaration, and only the uploader's own declaration is a declaration by the uploader."""

    metadata: bool = False         # C2PA, GB 45438 implicit label, IPTC/XMP, a platform's AIGC field, tool tags
    uploader: bool = False         # the creator declared AI at upload (--declared-ai, the API's declared_ai)
    on_screen_label: bool = False  # an explicit label readable in the frames ("AI生成", "AI-generated")
    on_screen_mark: bool = False   # a generator's visible watermark or handle ("Sora @name", "MADE WITH PIKA")
    embedded_mark: bool = False    # an invisible generator watermark in the pixels
    unread_label: bool = False     # an AI-label field in the metadata whose value no known convention reads

    @property
    def labelled(self) -> bool:
        """Whether a viewer is told it is AI without the platform adding anything: the uploader's own
        declaration (the platform shows it) or a label on screen."""
        return self.uploader or self.on_screen_label
