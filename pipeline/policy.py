"""Matches + synthetic-media evidence + each rights holder's policy → findings and a verdict.

Pure decision logic; every action carries its reasons in words a reviewer understands.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from typing import Literal

from pydantic import BaseModel, Field

from pipeline.types import Disclosure, IdentityInfo, Track, TrackMatch


class Action(str, enum.Enum):
    ALLOW = "allow"
    LABEL = "label"        # force an AI label
    REVIEW = "review"      # uncertain: a human decides
    RESTRICT = "restrict"  # limit distribution
    BLOCK = "block"


SEVERITY = {Action.ALLOW: 0, Action.LABEL: 1, Action.REVIEW: 2, Action.RESTRICT: 3, Action.BLOCK: 4}


class Policy(str, enum.Enum):
    """What a rights holder allows others to do with their likeness."""

    ALLOW = "allow"                    # any use, AI included (unlabelled AI still gets a label)
    AI_IF_LABELLED = "ai_if_labelled"  # real footage fine; AI use only when labelled as AI
    NO_AI = "no_ai"                    # real footage fine; no AI-generated use at all
    NO_USE = "no_use"                  # no use by others: AI blocked, real footage reviewed


DEFAULT_POLICY = Policy.AI_IF_LABELLED


class AiLevel(str, enum.Enum):
    DECLARED = "declared"    # decisive: the file, its pixels, its screen or its uploader say AI
    LIKELY = "likely"        # detectors agree strongly
    POSSIBLE = "possible"    # some signal, not enough to act on alone
    NONE = "none"            # no evidence (which proves nothing)


class PolicyConfig(BaseModel):
    ai_likely_score: float = Field(
        0.75, ge=0.0, le=1.0, description="Fused synthetic score from which content counts as AI "
        "without a declaration. Learned detectors generalise poorly, so keep this high.")
    ai_possible_score: float = Field(
        0.45, ge=0.0, le=1.0, description="Fused synthetic score from which a protected likeness "
        "goes to human review.")
    swap_possible_score: float = Field(
        0.5, ge=0.0, le=1.0, description="face_swap score of a registered person's own track from which "
        "that finding goes to human review: 0.5 is the 95th percentile of real faces, where the probe "
        "detects ~70% of H.264 pastes of people it never saw (benchmarks/results/face_swap_probe.json).")
    swap_likely_score: float = Field(
        0.9, ge=0.0, le=1.0, description="face_swap score from which that finding counts as manipulated "
        "(impersonation; restrict when unlabelled), when another signal agrees (swap_alone_restricts): 0.9 is "
        "the 99.5th percentile of real faces without filters.")
    swap_alone_restricts: bool = Field(
        False, description="Let a face_swap score at or above swap_likely_score make the finding manipulated on "
        "its own. Off: alone it sends the finding to review, and it counts as manipulated only when the video's "
        "own evidence (the fused score, without the probe) is at least possible. Filters on real faces reach "
        "the restrict line: a heavy beauty preset put 38% of real tracks (8 of 13 people) at 0.9 or more, "
        "whitening 12%, pastes on the same clips 84-96% (benchmarks/results/face_swap_filters.json), so a probe "
        "score alone must not restrict a person's own video.")
    undeclared_ai_action: Literal["label", "restrict", "review"] = Field(
        "restrict", description="The platform's answer to AI content its uploader did not declare (a generator's "
        "mark or label on screen, metadata, a watermark, detectors): label it, restrict its distribution (the "
        "default, as platforms now do for undisclosed AI) or send it to review. Declared AI always gets label.")


@dataclass(frozen=True)
class AiEvidence:
    level: AiLevel
    score: float
    disclosure: Disclosure   # who or what says it is AI
    summary: str             # one line: which signals say what
    face_swap: dict[int, float] = field(default_factory=dict)  # face_swap score per track id
    platform_labels: bool = False  # undeclared AI gets the platform's own label (undeclared_ai_action=label)

    @property
    def is_ai(self) -> bool:
        return self.level in (AiLevel.DECLARED, AiLevel.LIKELY)

    @property
    def labelled(self) -> bool:
        """Whether viewers will be told it is AI: the uploader declared it, a label is on screen, or the
        platform labels undeclared AI itself."""
        return self.disclosure.labelled or (self.is_ai and self.platform_labels)


def assess_ai(score: float, decisive: bool, disclosure: Disclosure, summary: str, face_swap: dict[int, float],
              config: PolicyConfig) -> AiEvidence:
    """The video's AI evidence as the decision sees it; the uploader's own declaration is decisive."""
    level = ai_level(score, decisive or disclosure.uploader, config)
    if disclosure.uploader:
        summary = "the uploader declared it AI-generated" + (f"; {summary}" if decisive else "")
    if level is AiLevel.NONE and disclosure.unread_label:  # a label we cannot read is no proof of absence
        level = AiLevel.POSSIBLE
        summary = f"the file carries an AI-label field whose value is not understood; {summary}"
    return AiEvidence(level, score, disclosure, summary, face_swap, config.undeclared_ai_action == "label")


def ai_level(score: float, decisive: bool, config: PolicyConfig) -> AiLevel:
    if decisive:
        return AiLevel.DECLARED
    if score >= config.ai_likely_score:
        return AiLevel.LIKELY
    if score >= config.ai_possible_score:
        return AiLevel.POSSIBLE
    return AiLevel.NONE


_LEVEL_RANK = {AiLevel.NONE: 0, AiLevel.POSSIBLE: 1, AiLevel.LIKELY: 2, AiLevel.DECLARED: 3}


def evidence_for(ai: AiEvidence, track_ids: Iterable[int], config: PolicyConfig) -> AiEvidence:
    """The video's evidence, raised for one finding when that person's own face looks pasted onto
    another head: a face swap concerns the face it is in, however clean the rest of the video.

    The probe alone raises it to `possible` (a person reviews), even at swap_likely_score: beauty filters
    and retouching on real faces score as high as pastes. It makes the finding `likely` (manipulated)
    only when the video's own evidence is at least `possible` too, or when the platform lets it act
    alone (swap_alone_restricts)."""
    scores = [ai.face_swap[t] for t in track_ids if t in ai.face_swap]
    if not scores:
        return ai
    top = max(scores)
    corroborated = config.swap_alone_restricts or _LEVEL_RANK[ai.level] >= _LEVEL_RANK[AiLevel.POSSIBLE]
    if top >= config.swap_likely_score and corroborated:
        level = AiLevel.LIKELY
    elif top >= config.swap_possible_score:
        level = AiLevel.POSSIBLE
    else:
        level = AiLevel.NONE
    if _LEVEL_RANK[level] <= _LEVEL_RANK[ai.level]:
        return ai
    if level is AiLevel.LIKELY:
        said = f"the face looks pasted onto another head (face_swap {top:.2f} on this person's track)"
    elif top >= config.swap_likely_score:
        said = (f"the face may be pasted onto another head (face_swap {top:.2f} on this person's track; no other "
                f"signal agrees, and beauty filters and retouching score this high on real faces, so a person "
                f"checks)")
    else:
        said = f"the face may be pasted onto another head (face_swap {top:.2f} on this person's track)"
    return replace(ai, level=level, summary=f"{said}; {ai.summary}")


@dataclass
class Finding:
    identity: IdentityInfo
    category: str            # impersonation | portrait_rights | ip_character
    confidence: float
    tracks: list[Track]
    matches: list[TrackMatch]    # one per track, in the same order
    match: TrackMatch            # the strongest of them
    action: Action
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    action: Action
    reasons: list[str]


def match_confidence(similarity: float, threshold: float, review_threshold: float) -> float:
    """Similarity → confidence: 0.25 at the review threshold, 0.5 at the match threshold, ~0.99
    a quarter of a unit above it (piecewise linear, clipped)."""
    if similarity <= review_threshold:
        return max(0.0, 0.25 * (1 - (review_threshold - similarity) / max(review_threshold, 1e-6)))
    if similarity <= threshold:
        return 0.25 + 0.25 * (similarity - review_threshold) / max(threshold - review_threshold, 1e-6)
    return min(0.99, 0.5 + 0.49 * (similarity - threshold) / 0.25)


def category_for(identity: IdentityInfo, ai: AiEvidence) -> str:
    if identity.kind == "character":
        return "ip_character"
    return "impersonation" if ai.is_ai else "portrait_rights"


def decide_finding(identity: IdentityInfo, match: TrackMatch, ai: AiEvidence, uploader: str | None,
                   ) -> tuple[Action, list[str]]:
    """The action for one registered likeness found in the video, with its reasons."""
    who = f"{identity.name} ({identity.kind}, owner {identity.owner})"
    if uploader is not None and (uploader == identity.owner or uploader in identity.authorized_uploaders):
        return Action.ALLOW, [f"uploader {uploader} is authorised by the owner of {who}"]
    weak = match.status == "weak"
    policy = Policy(identity.policy)
    is_ai = ai.is_ai
    ai_words = {AiLevel.DECLARED: f"it is declared or marked as AI-generated ({_said_by(ai.disclosure)})",
                AiLevel.LIKELY: f"detectors find it likely AI-generated or manipulated ({ai.summary})",
                AiLevel.POSSIBLE: f"detectors find it possibly AI-generated or manipulated ({ai.summary})",
                AiLevel.NONE: "no evidence of AI generation"}[ai.level]
    if weak:
        if ai.level is AiLevel.NONE and policy is not Policy.NO_USE:
            return Action.ALLOW, [f"uncertain resemblance to {who}; {ai_words}"]
        return Action.REVIEW, [f"possible appearance of {who} ({match.reason}); {ai_words}"]
    if policy is Policy.ALLOW:
        return Action.ALLOW, [f"{who} appears; the owner's policy allows any use"]
    if is_ai:
        if policy is Policy.AI_IF_LABELLED:
            if ai.labelled:
                return Action.LABEL, [f"AI-generated likeness of {who}; {ai_words}; the owner allows AI use when "
                                      "labelled: it must carry the platform's AI label"]
            return Action.RESTRICT, [f"AI-generated likeness of {who} without an AI label; {ai_words}; "
                                     "the owner allows AI use only when labelled"]
        if ai.level is AiLevel.LIKELY:  # learned detectors never block alone (DESIGN.md)
            return Action.RESTRICT, [f"likely AI-generated or manipulated likeness of {who}; {ai_words}; the "
                                     "owner's policy forbids AI use; restricted, not blocked, until a person "
                                     "confirms, since only detectors say so"]
        return Action.BLOCK, [f"AI-generated likeness of {who}; {ai_words}; the owner's policy forbids AI use"]
    if ai.level is AiLevel.POSSIBLE:
        return Action.REVIEW, [f"{who} appears and {ai_words}; a person should check before it spreads"]
    if policy is Policy.NO_USE:
        return Action.REVIEW, [f"{who} appears in real footage; the owner's policy forbids use by others, "
                               "a person should judge (news and commentary may be fair use)"]
    return Action.ALLOW, [f"{who} appears in footage with {ai_words}; the owner's policy allows real footage"]


_SAYS_AI = {"metadata": "the file's metadata", "uploader": "the uploader", "on_screen_label": "a label on screen",
            "on_screen_mark": "a generator's mark on screen", "embedded_mark": "an invisible generator watermark"}


def _said_by(disclosure: Disclosure) -> str:
    """Who or what says it is AI, in words (an unread label field says nothing either way)."""
    return ", ".join(words for name, words in _SAYS_AI.items() if getattr(disclosure, name)) or "detectors"


def content_action(ai: AiEvidence, config: PolicyConfig) -> tuple[Action, list[str]]:
    """The platform's duty whoever is in the video: AI content is never let through without a label.
    Declared or visibly labelled AI gets `label`; AI the uploader did not declare gets the platform's setting."""
    if not ai.is_ai and ai.disclosure.unread_label:
        return Action.REVIEW, ["the file carries an AI-label field whose value is not understood: a person should "
                               "read it (see provenance.uninterpreted)"]
    if not ai.is_ai:
        return Action.ALLOW, []
    if ai.disclosure.labelled:
        return Action.LABEL, [f"AI-generated content, declared by {_said_by(ai.disclosure)}: the platform must show "
                              f"its AI label ({ai.summary})"]
    action = Action(config.undeclared_ai_action)
    return action, [f"AI-generated content the uploader did not declare ({_said_by(ai.disclosure)}: {ai.summary}); "
                    f"the platform's setting for undeclared AI is {action.value}"]


def verdict(findings: list[Finding], ai: AiEvidence, config: PolicyConfig) -> Verdict:
    """The most severe action wins; all reasons that led to a non-allow action are kept."""
    action, reasons = content_action(ai, config)
    for finding in findings:
        if SEVERITY[finding.action] > SEVERITY[action]:
            action = finding.action
        if finding.action is not Action.ALLOW:
            reasons = reasons + finding.reasons
    if action is Action.ALLOW and not reasons:
        reasons = ["no protected likeness used against its owner's policy and no AI evidence found"]
    return Verdict(action, reasons)


@dataclass(frozen=True)
class Repost:
    """A post's item that is a near-duplicate of a picture in an earlier scan where a reviewer confirmed a
    finding (pipeline/near_duplicates.py; the service looks it up)."""

    item: int
    scan_id: str
    scan_item: int
    distance: int              # bits of 256 (PDQ) between the two pictures, nearest orientation
    identities: tuple[str, ...]  # the likenesses whose findings were confirmed


def repost_verdict(current: Verdict, reposts: Iterable[Repost]) -> Verdict:
    """A confirmed violation posted again with small edits is caught without a new review: restrict
    (or the current action, if more severe), with the earlier scan named in the reasons."""
    reposts = list(reposts)
    if not reposts:
        return current
    action = current.action if SEVERITY[current.action] >= SEVERITY[Action.RESTRICT] else Action.RESTRICT
    reasons = [f"item {r.item} re-posts item {r.scan_item} of scan {r.scan_id} (perceptual hash {r.distance} of 256 "
               f"bits apart), where a reviewer confirmed a violation about {', '.join(r.identities)}"
               for r in reposts]
    return Verdict(action, reasons + current.reasons)
