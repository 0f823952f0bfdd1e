"""A video scanned in segments (each result through its JSON form, as between workers) and merged
gives the report a whole scan gives: same tracks, findings and verdict, with tracks cut by a
boundary joined, and different people on either side of a boundary kept apart. The synthetic
score may differ a little: frame-level detectors look at a few frames per segment, not per video."""
from __future__ import annotations

import json

import cv2
import pytest

from samples.pastes import SourceFace, clone_face

from pipeline.provenance.reader import read_provenance
from pipeline.report import build_report
from pipeline.video import probe
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from samples.services import video
from tests.conftest import make_runtime
from workers.scans import codec
from workers.scans.segments import Segment, merge_segments, plan_segments

DECIDED = ("tracks", "findings", "verdict", "faces_dropped")


def test_plan_cuts_on_sampling_instants():
    assert plan_segments(40.0, 30.0, 0.5) == [Segment(0, 0.0, None)]
    plan = plan_segments(120.0, 30.0, 0.5)
    assert [(s.start_s, s.end_s) for s in plan] == [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0), (90.0, None)]
    for segment in plan_segments(101.3, 7.0, 0.4):
        assert round(segment.start_s / 0.4, 6) == round(segment.start_s / 0.4)
    assert len(plan_segments(101.3, 7.0, 0.4)) == 14


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory, detector, embedder):
    """With every face embedded a segmented scan must equal a whole one exactly; with the default
    (established tracks skip embeddings for a while) segments embed a few more faces after each
    cut, so tracks, findings and verdict must agree but similarities may differ slightly. Both analyse
    every sample: coarse to fine starts its grid at each segment's first frame and analyses the
    samples held at a segment's end whenever a face is on screen, so a segmented scan analyses a few
    more faces than a whole one (tests/pipeline/test_coarse_to_fine.py covers it)."""
    made = {}
    for name, reembed_every_s in (("embed-every-face", 0.0), ("default-tracking", None)):
        tracking = {} if reembed_every_s is None else {"tracking": {"reembed_every_s": reembed_every_s}}
        overrides = {"scan": {**tracking, "sampling": {"coarse_interval_s": 0.0}}}
        runtime = make_runtime(tmp_path_factory.mktemp(name) / "home", detector, embedder, **overrides)
        runtime.gallery.add("Yao Ming", "person", "nba", "no_ai", [],
                            runtime.enroller.enroll([package_photo("yaoming.jpg")]))
        made[name] = runtime
    return made


def _segmented(runtime, path, cuts):
    starts, ends = [0.0, *cuts], [*cuts, None]
    parts = []
    for start, end in zip(starts, ends):
        observation = runtime.scanner.observe(path, start_s=start, end_s=end)
        parts.append(codec.decode(json.loads(json.dumps(codec.encode(observation)))))
    info = probe(path, runtime.settings.scan.sampling)
    return merge_segments(info, read_provenance(path), parts[::-1], runtime.scanner, runtime.gallery, "user-1")


def _without_swap(value):
    """Tracks without their face_swap score, which rests on the faces each segment picked."""
    if isinstance(value, list):
        return [{k: v for k, v in t.items() if k != "face_swap"} for t in value]
    return value


def _outline(report: dict) -> dict:
    """What must not depend on where the cuts fall."""
    return {"tracks": [(t["start_s"], t["end_s"], t["faces"], (t["match"] or {}).get("identity_id"))
                       for t in report["tracks"]],
            "findings": [(f["identity"]["id"], f["start_s"], f["end_s"], f["action"], f["category"])
                         for f in report["findings"]],
            "verdict": report["verdict"], "faces_dropped": report["faces_dropped"],
            "frames_sampled": report["video"]["frames_sampled"]}


@pytest.mark.parametrize("tracking, name, cuts", [
    ("embed-every-face", "yao-8s", [2.5, 5.0]),           # one person across two cuts
    ("embed-every-face", "yao-then-gdp-8s", [4.0]),       # other people from the very cut on
    ("embed-every-face", "yao-then-gdp-8s", [3.0, 6.0]),
    ("default-tracking", "yao-then-gdp-8s", [3.0, 6.0]),
])
def test_segmented_scan_equals_whole_scan(runtimes, tracking, name, cuts):
    runtime, path = runtimes[tracking], video(name)
    whole = build_report(runtime.scanner.scan(path, runtime.gallery, uploader="user-1"))
    merged = build_report(_segmented(runtime, path, cuts))
    assert _outline(merged) == _outline(whole)
    if tracking == "embed-every-face":
        assert {k: _without_swap(merged[k]) for k in DECIDED} == {k: _without_swap(whole[k]) for k in DECIDED}
    # The face-swap probe scores a few faces per track in each segment; every real face stays low.
    for report in (merged, whole):
        assert all(t["face_swap"] is None or t["face_swap"] < 0.5 for t in report["tracks"])
    # Frame-level detectors see a few frames per segment instead of a few per video: close, not equal.
    assert abs(merged["synthetic"]["score"] - whole["synthetic"]["score"]) < 0.05
    assert merged["gallery_version"] == whole["gallery_version"] == 1
    yao = [t for t in merged["tracks"] if t["match"]]
    assert len(yao) == 1 and yao[0]["start_s"] == 0.0  # one Yao Ming track across every cut


def test_a_pasted_face_is_caught_across_segments(runtimes, tmp_path, detector):
    """Yao Ming's face cloned onto Grace Hopper, scanned in two segments: the per-track face_swap
    scores follow the joined track, so the merged finding goes to review as the whole scan's does (the
    probe alone never restricts: PolicyConfig.swap_alone_restricts)."""
    grace = cv2.imread(str(package_photo("grace_hopper.jpg")))
    yao = cv2.imread(str(package_photo("yaoming.jpg")))
    largest = {name: max(detector.detect(image), key=lambda f: float(f.bbox[2] - f.bbox[0])).landmarks
               for name, image in (("grace", grace), ("yao", yao))}
    fake = clone_face(grace, largest["grace"], SourceFace("yao", yao, largest["yao"]), "normal", "ellipse")
    path = encode_video(tmp_path / "swap.mp4", [Scene(fake, 4.0, "zoom_in")], size=(640, 360), crf=23)
    runtime = runtimes["embed-every-face"]
    whole = build_report(runtime.scanner.scan(path, runtime.gallery, uploader="user-1"))
    merged = build_report(_segmented(runtime, path, [2.0]))
    for report in (whole, merged):
        [finding] = report["findings"]
        assert finding["identity"]["name"] == "Yao Ming" and finding["category"] == "portrait_rights"
        assert report["verdict"]["action"] == "review"  # no_ai policy, but the probe alone neither blocks nor restricts
        [track] = [t for t in report["tracks"] if t["track_id"] in finding["tracks"]]
        assert track["face_swap"] >= 0.9
