"""Tunable parameters of one scan, as bounded and described fields.

Defaults come from measurements recorded in docs/thresholds.md; change them there first.
"""
from __future__ import annotations

from pydantic import BaseModel, Field


class SamplingConfig(BaseModel):
    interval_s: float = Field(
        0.5, gt=0.0, le=10.0,
        description="Seconds between sampled frames. Smaller finds brief appearances but costs "
        "detection time linearly; decoding cost is mostly independent of it.",
    )
    scene_cuts: bool = Field(
        True, description="Also sample the first frame after a detected scene cut, so a cut "
        "between two regular samples is never missed.",
    )
    scene_cut_threshold: float = Field(
        0.12, gt=0.0, le=1.0,
        description="Mean absolute difference (0..1) between 64x36 grey thumbnails three decoded "
        "frames apart that counts as a cut. Measured: hard cuts between photos 0.17-0.24, pans and "
        "zooms within a shot below 0.05. Lower catches soft cuts but fires on fast camera moves.",
    )
    skip_nonref: bool = Field(
        True, description="Let the decoder skip non-reference frames (about a third of H.264 "
        "frames). Costs at most one frame of timing precision, saves ~30% decode time.",
    )
    skip_loop_filter: bool = Field(
        False, description="Skip the in-loop deblocking filter: ~25% faster decode, but blockier "
        "frames lower embedding quality on compressed uploads.",
    )
    max_pixels: int = Field(
        4096 * 4096, gt=0,
        description="Frames larger than this (width*height) are refused as unsupported input.",
    )
    max_duration_s: float = Field(
        4 * 3600.0, gt=0, description="Longer videos are refused; split them upstream.",
    )


class DetectionConfig(BaseModel):
    input_size: int = Field(
        640, ge=160, le=1920, multiple_of=32,
        description="Square detector input. 640 finds faces down to ~20 px in 1080p; larger "
        "finds smaller faces at quadratic cost.",
    )
    score_threshold: float = Field(0.5, ge=0.05, le=0.99, description="SCRFD detection score floor.")
    embed_batch_size: int = Field(32, ge=1, le=512, description="Aligned faces per ArcFace call.")
    threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads per model; 0 lets onnxruntime use "
        "every core. Set 1 when running one worker process per core.")


class QualityConfig(BaseModel):
    """Faces failing these are tracked but never used for identity decisions."""

    min_face_px: float = Field(
        36.0, ge=8.0, description="Minimum of box width and height in pixels. Tiny faces embed "
        "to noise and produce confident wrong matches.",
    )
    min_det_score: float = Field(0.6, ge=0.0, le=1.0, description="Detector confidence floor for matching.")
    min_sharpness: float = Field(
        25.0, ge=0.0, description="Variance of the Laplacian of the aligned 112x112 grey crop. "
        "Motion-blurred faces score below ~20.",
    )
    max_yaw: float = Field(
        0.6, gt=0.0, le=1.0, description="Largest |yaw| estimate from landmarks (0 frontal, 1 full "
        "profile). Profiles match strangers far more often.",
    )
    max_pitch: float = Field(0.6, gt=0.0, le=1.0, description="Largest |pitch| estimate from landmarks.")


class TrackingConfig(BaseModel):
    max_gap_s: float = Field(
        2.0, gt=0.0, description="A track ends when its face is not seen for this long.",
    )
    min_iou: float = Field(0.2, ge=0.0, le=1.0, description="Box overlap that supports a link.")
    link_similarity: float = Field(
        0.30, ge=-1.0, le=1.0, description="Embedding similarity needed to link when boxes overlap.",
    )
    relink_similarity: float = Field(
        0.50, ge=-1.0, le=1.0, description="Embedding similarity that links without box overlap "
        "(fast motion, sparse sampling). Well above stranger similarities (docs/thresholds.md).",
    )
    reuse_iou: float = Field(
        0.3, ge=0.0, le=1.0, description="A face overlapping an established track's last box this much "
        "is linked without a new embedding. Embedding is the costliest stage in crowded scenes: on the "
        "64 s 1080p benchmark clip 0.3 instead of 0.5 halves its time with the same tracks and findings.",
    )
    reembed_every_s: float = Field(
        2.0, ge=0.0, description="Established tracks are still re-embedded this often, so a swap "
        "between overlapping people is caught within this time. 0 embeds every face.",
    )
    min_embedded_faces: int = Field(
        2, ge=1, description="A track counts as established after this many embedded usable faces.",
    )


class MatchConfig(BaseModel):
    """Open-set identity decision per track (docs/thresholds.md has the measurements)."""

    threshold: float = Field(
        0.40, ge=-1.0, le=1.0, description="Minimum cosine similarity between a track and an "
        "identity. Higher: fewer false matches on strangers, more misses on hard footage.",
    )
    review_threshold: float = Field(
        0.32, ge=-1.0, le=1.0, description="Tracks between this and `threshold` are reported as "
        "weak candidates and send the video to human review rather than acting.",
    )
    margin: float = Field(
        0.06, ge=0.0, le=1.0, description="Required lead over the second-best identity; protects "
        "against look-alikes registered side by side.",
    )
    min_vote_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the track's usable faces whose own best "
        "identity is the winner. One good frame among many disagreeing ones is not enough.",
    )
    top_k: int = Field(50, ge=1, le=1000, description="Reference hits fetched per query.")


class ScanConfig(BaseModel):
    sampling: SamplingConfig = SamplingConfig()
    detection: DetectionConfig = DetectionConfig()
    quality: QualityConfig = QualityConfig()
    tracking: TrackingConfig = TrackingConfig()
    match: MatchConfig = MatchConfig()
