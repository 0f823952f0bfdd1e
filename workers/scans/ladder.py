"""The account-level ladder: an uploader's recent history → a recommendation (none, warn, restrict
distribution, suspend) with the reasons and the findings it rests on. The platform decides; the service
recommends. Steps and counts are the platform operator's setting (Settings.ladder)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

Step = Literal["none", "warn", "restrict_distribution", "suspend"]
RANK: dict[str, int] = {"none": 0, "warn": 1, "restrict_distribution": 2, "suspend": 3}
COUNTED = ("confirmed_violations", "impersonation", "portrait_rights", "undeclared_ai")
WORDS = {"confirmed_violations": "confirmed violation(s) (findings a reviewer confirmed, and re-posts of them)",
         "impersonation": "impersonation finding(s) acted on (AI likeness of a registered person)",
         "portrait_rights": "portrait-rights finding(s) acted on (a registered person in real footage)",
         "undeclared_ai": "scan(s) of AI content the uploader did not declare"}


class LadderStep(BaseModel):
    """One rung: reached when any of its counts (within the window) is at least its value."""

    action: Literal["warn", "restrict_distribution", "suspend"]
    confirmed_violations: int | None = Field(None, ge=1)
    impersonation: int | None = Field(None, ge=1)
    portrait_rights: int | None = Field(None, ge=1)
    undeclared_ai: int | None = Field(None, ge=1)


def _default_steps() -> list[LadderStep]:
    return [LadderStep(action="warn", confirmed_violations=1, impersonation=2, undeclared_ai=3),
            LadderStep(action="restrict_distribution", confirmed_violations=2, impersonation=4, undeclared_ai=6),
            LadderStep(action="suspend", confirmed_violations=3)]


class LadderConfig(BaseModel):
    window_days: float = Field(90.0, gt=0, le=3650, description="Only scans of the last this many days count.")
    steps: list[LadderStep] = Field(
        default_factory=_default_steps,
        description="The rungs (env LIKENESS_LADDER__STEPS as JSON). Default: warn at 1 confirmed violation, 2 "
        "impersonation findings or 3 undeclared-AI scans; restrict distribution at 2, 4 or 6; suspend at 3 "
        "confirmed violations (a detector alone never suspends: only reviewers' confirmations do).")


@dataclass(frozen=True)
class Evidence:
    """What one count rests on: a scan, and the finding or decision in it (ids only)."""

    kind: str                      # one of COUNTED
    scan_id: str
    identity_id: str | None = None
    finding_id: int | None = None
    decision_id: int | None = None


@dataclass
class Recommendation:
    action: Step
    reasons: list[str] = field(default_factory=list)
    rests_on: list[Evidence] = field(default_factory=list)


def recommend(counts: dict[str, int], evidence: list[Evidence], config: LadderConfig) -> Recommendation:
    """The highest rung reached, with every count that reached it and the evidence behind those counts."""
    best: Recommendation = Recommendation("none", [f"no rung of the ladder reached in the last "
                                                   f"{config.window_days:g} days"])
    for step in config.steps:
        met = [name for name in COUNTED
               if getattr(step, name) is not None and counts.get(name, 0) >= getattr(step, name)]
        if not met or RANK[step.action] <= RANK[best.action]:
            continue
        reasons = [f"{counts[name]} {WORDS[name]} in the last {config.window_days:g} days (this rung: at least "
                   f"{getattr(step, name)})" for name in met]
        best = Recommendation(step.action, reasons, [e for e in evidence if e.kind in met])
    return best
