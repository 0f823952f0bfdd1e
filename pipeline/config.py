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
    decode_threads: int = Field(
        0, ge=0, le=64, description="Decoder threads of a scan; 0 lets FFmpeg use one per core. 1 suits a "
        "worker process per core: measured on 2 cores, 3-5% less scan CPU at the same wall time (frame "
        "threading's own work), and no decoder threads competing with the other workers.",
    )
    skip_loop_filter: bool = Field(
        False, description="Skip the in-loop deblocking filter, on reference frames too (the decode drifts "
        "from the encoder's pictures until the next keyframe): measured 9-20% less decode CPU on x264 "
        "uploads, 0-16% on real clips, sampled frames 40-48 dB PSNR (median) from the filtered ones; "
        "no threshold was measured on such frames.",
    )
    coarse_interval_s: float = Field(
        1.0, ge=0.0, le=10.0,
        description="Coarse to fine: faces are detected on samples this far apart (and on every cut and "
        "keyframe sample); the samples in between are analysed only when the faces change between two "
        "coarse samples (a face appears, leaves or moves). Saves detection and embedding on static shots "
        "and faceless stretches. Equal to or below `interval_s`, or 0: every sample is analysed.",
    )
    keyframe_first: bool = Field(
        True, description="Coarse to fine on a video whose keyframes lie at most 1.25 coarse intervals apart "
        "(phone recordings: one a second): the coarse samples are keyframes decoded alone, and the frames "
        "between two keyframes are decoded only when the faces of the two differ. Off: one decode of every "
        "reference frame, whatever the keyframes.",
    )
    unchanged_max_step: int = Field(
        24, ge=0, le=255,
        description="Coarse to fine: a coarse sample whose picture has not changed since the last one run "
        "through the detector (no point of a ~256x144 luma grid moved by more than this many levels) keeps "
        "that sample's faces instead of detecting them again: slides, title cards, still shots, a person "
        "sitting very still. A face entering, even at 36 px in 1080p, moves about 25 grid points; compression "
        "noise of a still picture moves none. 0: every coarse sample is detected.",
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
        description="Long side of the detector input (the short side follows the picture's aspect, "
        "rounded up to 32). 640 finds faces down to ~20 px in 1080p; larger finds smaller faces at "
        "quadratic cost.",
    )
    score_threshold: float = Field(0.5, ge=0.05, le=0.99, description="SCRFD detection score floor.")
    embed_batch_size: int = Field(32, ge=1, le=512, description="Aligned faces per ArcFace call.")
    threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads per model; 0 lets onnxruntime use "
        "every core. Set 1 when running one worker process per core.")


class QualityConfig(BaseModel):
    """Which faces carry identity at all, and how much each one weighs in its track's decision.

    Only faces that carry no identity (tiny, detector noise) are left out; pose and blur lower a
    face's weight instead of removing it (docs/thresholds.md: gates lost appearances a naive
    per-frame loop finds at the same false-match rate)."""

    min_face_px: float = Field(
        36.0, ge=8.0, description="Minimum of box width and height in pixels. Tiny faces embed "
        "to noise and produce confident wrong matches.",
    )
    min_det_score: float = Field(0.6, ge=0.0, le=1.0, description="Detector confidence floor for matching.")
    sharp: float = Field(
        25.0, ge=0.0, description="Variance of the Laplacian of the aligned 112x112 grey crop from which a "
        "face counts as sharp (full weight); motion-blurred faces score below ~20 and weigh less.",
    )
    frontal_yaw_deg: float = Field(
        20.0, gt=0.0, le=90.0, description="|yaw| and |pitch| (degrees, 5-point fit) up to which a face "
        "has full weight; beyond it the weight falls linearly to `min_pose_weight` at `profile_yaw_deg`.")
    profile_yaw_deg: float = Field(
        55.0, gt=0.0, le=90.0, description="|yaw| (degrees) from which a face counts as a profile: the least "
        "weight. The 5-point fit reads 60-75 degree faces at about 50.")
    min_pose_weight: float = Field(0.25, gt=0.0, le=1.0, description="Weight of a profile face.")
    small_face_px: float = Field(
        64.0, ge=8.0, description="Faces smaller than this (min side) weigh less (down to half at "
        "`min_face_px`) and are reported in the 'small' band.")


class ReferenceQualityConfig(BaseModel):
    """What a reference photo must be: references decide every later match, so they are held to more than
    scan faces. Three-quarter views are accepted (and tagged with their pose); true profiles are not."""

    min_face_px: float = Field(36.0, ge=8.0, description="Minimum of box width and height in pixels, as for "
                               "scan faces.")
    min_det_score: float = Field(0.6, ge=0.0, le=1.0, description="Detector confidence floor.")
    min_sharpness: float = Field(
        25.0, ge=0.0, description="Variance of the Laplacian of the aligned crop; below it a reference is "
        "refused as blurred.")
    max_yaw_deg: float = Field(
        55.0, gt=0.0, le=90.0, description="Largest |yaw| in degrees (106-point landmark fit). 30-45 degree "
        "interview stills read 27-50; faces judged 60-75 degrees by eye read 40-53, and the 106-point fit reads "
        "large angles low, so only what lies beyond is a true profile.")
    max_pitch_deg: float = Field(35.0, gt=0.0, le=90.0, description="Largest |pitch| in degrees.")


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
        0.5, ge=0.0, le=1.0, description="Quality-weighted share of the track's voting faces (those "
        "within the review threshold of some identity) whose own best identity is the winner. One good "
        "frame among many disagreeing ones is not enough; faces close to nobody abstain.",
    )
    top_k: int = Field(50, ge=1, le=1000, description="Reference hits fetched per query.")
    candidate_slack: float = Field(
        0.08, ge=0.0, le=1.0, description="A track whose best similarity to a registered likeness is within "
        "this of `review_threshold` counts as a candidate for work only a registered person's track needs "
        "(the face-swap probe). The slack covers what the final decision can add: a segment's track joined "
        "to another at the merge, or a likeness's references changed in between.",
    )


class ScanConfig(BaseModel):
    sampling: SamplingConfig = SamplingConfig()
    detection: DetectionConfig = DetectionConfig()
    quality: QualityConfig = QualityConfig()
    references: ReferenceQualityConfig = ReferenceQualityConfig()
    tracking: TrackingConfig = TrackingConfig()
    match: MatchConfig = MatchConfig()
