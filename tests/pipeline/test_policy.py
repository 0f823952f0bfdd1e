"""The decision matrix: match strength x AI evidence x label x policy x uploader → action."""
from __future__ import annotations

import pytest

from pipeline.policy import (Action, AiEvidence, AiLevel, Finding, Policy, PolicyConfig, ai_level, assess_ai,
                             category_for, decide_finding, evidence_for, match_confidence, verdict)
from pipeline.types import Disclosure, IdentityInfo, TrackMatch


def identity(policy: Policy, kind: str = "person") -> IdentityInfo:
    return IdentityInfo(id="id1", name="Star", kind=kind, owner="studio", policy=policy.value,
                        authorized_uploaders=("licensee",))


def match(status: str) -> TrackMatch:
    info = identity(Policy.NO_AI)
    return TrackMatch(info if status == "match" else None, 0.7 if status == "match" else 0.35, 0.3, 1.0, info,
                      status, "test")


def ai(level: AiLevel, labelled: bool, platform_labels: bool = False) -> AiEvidence:
    """Evidence at `level`; `labelled`: the uploader declared it. Decisive evidence without that comes from
    the file's metadata, as most generators write it."""
    disclosure = Disclosure(uploader=labelled, metadata=level is AiLevel.DECLARED and not labelled)
    return AiEvidence(level, {AiLevel.DECLARED: 0.99, AiLevel.LIKELY: 0.8, AiLevel.POSSIBLE: 0.5,
                              AiLevel.NONE: 0.1}[level], disclosure, "test", platform_labels=platform_labels)


D, L, P, N = AiLevel.DECLARED, AiLevel.LIKELY, AiLevel.POSSIBLE, AiLevel.NONE
A, LB, RV, RS, B = Action.ALLOW, Action.LABEL, Action.REVIEW, Action.RESTRICT, Action.BLOCK

MATRIX = [
    # status, ai level, labelled (uploader declared), policy, uploader, expected finding action
    ("match", D, False, Policy.AI_IF_LABELLED, None, RS),  # only the metadata says so: no viewer is told
    ("match", D, True, Policy.AI_IF_LABELLED, None, LB),   # allowed when labelled: the label is the duty
    ("match", L, False, Policy.AI_IF_LABELLED, None, RS),
    ("match", L, True, Policy.AI_IF_LABELLED, None, LB),
    ("match", P, False, Policy.AI_IF_LABELLED, None, RV),
    ("match", N, False, Policy.AI_IF_LABELLED, None, A),
    ("match", D, True, Policy.NO_AI, None, B),
    ("match", L, False, Policy.NO_AI, None, RS),   # detectors alone never block
    ("match", L, True, Policy.NO_AI, None, RS),
    ("match", L, False, Policy.NO_USE, None, RS),
    ("match", N, False, Policy.NO_AI, None, A),
    ("match", N, False, Policy.NO_USE, None, RV),
    ("match", D, False, Policy.NO_USE, None, B),
    ("match", D, False, Policy.ALLOW, None, A),
    ("match", D, False, Policy.NO_AI, "licensee", A),
    ("match", D, False, Policy.NO_AI, "studio", A),
    ("match", D, False, Policy.NO_AI, "someone-else", B),
    ("weak", N, False, Policy.NO_AI, None, A),
    ("weak", D, False, Policy.NO_AI, None, RV),
    ("weak", P, False, Policy.AI_IF_LABELLED, None, RV),
    ("weak", N, False, Policy.NO_USE, None, RV),
]


@pytest.mark.parametrize("status, level, label, policy, uploader, expected", MATRIX)
def test_decision_matrix(status, level, label, policy, uploader, expected):
    action, reasons = decide_finding(identity(policy), match(status), ai(level, label), uploader)
    assert action is expected
    assert reasons and all(isinstance(r, str) and "Star" in r for r in reasons)


def test_a_platform_that_labels_undeclared_ai_makes_it_labelled_for_the_owner():
    evidence = ai(D, False, platform_labels=True)
    assert decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), evidence, None)[0] is LB
    assert decide_finding(identity(Policy.NO_AI), match("match"), evidence, None)[0] is B


@pytest.mark.parametrize("level, labelled, setting, expected", [
    (D, True, "restrict", LB),     # declared AI is never answered with allow
    (L, True, "restrict", LB),
    (D, False, "restrict", RS),    # AI the uploader did not declare: the platform's setting, restrict by default
    (D, False, "label", LB),
    (D, False, "review", RV),
    (L, False, "restrict", RS),
    (P, False, "restrict", A),     # a weak signal alone is no AI evidence
    (N, False, "restrict", A),
])
def test_content_without_a_protected_likeness(level, labelled, setting, expected):
    result = verdict([], ai(level, labelled), PolicyConfig(undeclared_ai_action=setting))
    assert result.action is expected
    assert result.reasons


def test_on_screen_label_counts_as_labelled_and_a_generator_mark_does_not():
    config = PolicyConfig()
    shown = AiEvidence(D, 0.99, Disclosure(on_screen_label=True), "AI生成 on screen")
    marked = AiEvidence(D, 0.99, Disclosure(on_screen_mark=True), "Sora mark on screen")
    assert verdict([], shown, config).action is LB
    assert verdict([], marked, config).action is RS
    assert "did not declare" in verdict([], marked, config).reasons[0]
    assert "a generator's mark on screen" in verdict([], marked, config).reasons[0]


def test_the_uploaders_declaration_is_ai_evidence_by_itself():
    config = PolicyConfig()
    declared = assess_ai(0.1, False, Disclosure(uploader=True), "no signal", {}, config)
    assert declared.level is D and declared.labelled
    assert verdict([], declared, config).action is LB
    undeclared = assess_ai(0.1, False, Disclosure(), "no signal", {}, config)
    assert undeclared.level is N and verdict([], undeclared, config).action is A


def test_most_severe_finding_wins_and_keeps_every_reason():
    evidence = ai(D, False)
    findings = []
    for policy in (Policy.AI_IF_LABELLED, Policy.NO_AI):
        action, reasons = decide_finding(identity(policy), match("match"), evidence, None)
        findings.append(Finding(identity(policy), "impersonation", 0.9, [], [], match("match"), action, reasons))
    result = verdict(findings, evidence, PolicyConfig())
    assert result.action is Action.BLOCK
    assert any("did not declare" in r for r in result.reasons)
    assert sum("Star" in r for r in result.reasons) == 2


def test_categories_and_levels():
    assert category_for(identity(Policy.NO_AI, "character"), ai(N, False)) == "ip_character"
    assert category_for(identity(Policy.NO_AI), ai(L, False)) == "impersonation"
    assert category_for(identity(Policy.NO_AI), ai(P, False)) == "portrait_rights"
    config = PolicyConfig()
    assert ai_level(0.0, True, config) is D
    assert ai_level(config.ai_likely_score, False, config) is L
    assert ai_level(config.ai_possible_score, False, config) is P
    assert ai_level(0.0, False, config) is N


def test_confidence_is_monotonic_and_bounded():
    values = [match_confidence(s / 100, 0.40, 0.32) for s in range(0, 101)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[0] >= 0.0 and values[-1] <= 0.99
    assert match_confidence(0.40, 0.40, 0.32) == pytest.approx(0.5)


SWAP = PolicyConfig()


@pytest.mark.parametrize("video_level, swap_score, tracks, expected", [
    (N, 0.2, [1], N),                                  # below the real faces' 95th percentile: nothing
    (N, SWAP.swap_possible_score, [1], P),             # the person's own face looks pasted: review
    (N, SWAP.swap_likely_score, [1], P),              # alone, even at the restrict line: review (filters)
    (P, SWAP.swap_likely_score, [1], L),              # with the video's own evidence: manipulated
    (N, 0.99, [2], N),                                 # another track's face says nothing about this person
    (L, 0.6, [1], L),                                  # never lowers what the whole video shows
    (D, 0.99, [1], D),
])
def test_a_swapped_face_raises_only_its_own_finding(video_level, swap_score, tracks, expected):
    evidence = AiEvidence(video_level, 0.1, Disclosure(), "video", face_swap={1: swap_score})
    own = evidence_for(evidence, tracks, SWAP)
    assert own.level is expected
    if expected is not video_level:
        assert "pasted onto another head" in own.summary


def test_swapped_face_of_a_registered_person_is_reviewed_or_restricted_with_words():
    corroborated = AiEvidence(P, 0.5, Disclosure(), "an operator's detector 0.90", face_swap={1: 0.97})
    own = evidence_for(corroborated, [1], SWAP)
    action, reasons = decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), own, None)
    assert action is RS and "pasted onto another head" in reasons[0]
    action, _ = decide_finding(identity(Policy.NO_AI), match("match"), own, None)
    assert action is RS  # a learned detector alone never blocks
    assert category_for(identity(Policy.NO_AI), own) == "impersonation"
    uncertain = evidence_for(AiEvidence(N, 0.1, Disclosure(), "x", face_swap={1: 0.6}), [1], SWAP)
    assert decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), uncertain, None)[0] is RV
    assert decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), uncertain, "licensee")[0] is A


def test_an_ai_label_field_that_cannot_be_read_goes_to_a_person():
    config = PolicyConfig()
    unread = assess_ai(0.1, False, Disclosure(unread_label=True), "no signal", {}, config)
    assert unread.level is P  # never "no evidence"
    result = verdict([], unread, config)
    assert result.action is RV and "not understood" in result.reasons[0]
    assert decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), unread, None)[0] is RV


# ---------------------------------------------------------------- a face-swap score alone never restricts

@pytest.mark.parametrize("score", [SWAP.swap_likely_score, 0.97, 1.0])
@pytest.mark.parametrize("policy", [Policy.AI_IF_LABELLED, Policy.NO_AI, Policy.NO_USE])
def test_a_face_swap_score_alone_sends_a_registered_persons_own_video_to_review_not_restrict(score, policy):
    """A real selfie video under a heavy beauty filter scored 1.00 on its owner's track: with no other
    signal, the finding goes to a person; it is neither impersonation nor restricted."""
    alone = AiEvidence(N, 0.1, Disclosure(), "no signal found AI generation", face_swap={1: score})
    own = evidence_for(alone, [1], SWAP)
    assert own.level is P and not own.is_ai
    action, reasons = decide_finding(identity(policy), match("match"), own, None)
    assert action is RV
    assert "may be pasted onto another head" in reasons[0] and "beauty filters" in reasons[0]
    assert category_for(identity(policy), own) == "portrait_rights"
    finding = Finding(identity(policy), category_for(identity(policy), own), 0.9, [], [], match("match"), action,
                      reasons)
    assert verdict([finding], alone, SWAP).action is RV


def test_a_face_swap_score_restricts_with_corroboration_or_when_the_platform_lets_it_act_alone():
    corroborated = evidence_for(AiEvidence(P, 0.5, Disclosure(), "custom 0.9", face_swap={1: 0.95}), [1], SWAP)
    assert corroborated.level is L and "looks pasted onto another head" in corroborated.summary
    below = evidence_for(AiEvidence(P, 0.5, Disclosure(), "custom 0.9", face_swap={1: 0.7}), [1], SWAP)
    assert below.level is P  # corroboration needs the probe at the restrict line too
    alone = AiEvidence(N, 0.1, Disclosure(), "none", face_swap={1: 0.95})
    trusting = PolicyConfig(swap_alone_restricts=True)
    assert evidence_for(alone, [1], trusting).level is L
    assert decide_finding(identity(Policy.AI_IF_LABELLED), match("match"), evidence_for(alone, [1], trusting),
                          None)[0] is RS
    assert evidence_for(alone, [1], PolicyConfig()).level is P
    assert PolicyConfig().swap_alone_restricts is False
