"""Registering a person from a clip: the dominant person's varied sharp faces become references, a
clip with no dominant person is refused unless --face picks one, and what was kept is reported."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from samples.clips import Scene, encode_video
from samples.photos import package_photo


def likeness(home, *args):
    return subprocess.run([sys.executable, "-m", "workers.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    yao, gdp = cv2.imread(str(package_photo("yaoming.jpg"))), cv2.imread(str(package_photo("gdp.jpg")))
    players = cv2.imread(str(package_photo("players.jpg")))
    # Yao Ming most of the time (zooming, so his face changes size), two other people briefly.
    interview = encode_video(folder / "interview.mp4", [Scene(yao, 3.0, "zoom_in"), Scene(gdp, 1.0, "static"),
                                                        Scene(yao, 2.0, "pan")], size=(640, 480), fps=25)
    # Two players seen equally long: nobody dominates.
    pair = encode_video(folder / "pair.mp4", [
        Scene(players, 2.0, "static", crop=(600.0, 80.0, 900.0, 300.0)),   # player 13, Yao Ming
        Scene(players, 2.0, "static", crop=(120.0, 60.0, 420.0, 280.0))], size=(640, 480), fps=25)
    return {"interview": interview, "pair": pair, "yao_photo": package_photo("yaoming.jpg")}


def test_a_person_registered_from_a_clip_is_found_in_other_footage(tmp_path, clips):
    home = tmp_path / "home"
    added = likeness(home, "gallery", "add", "--name", "Yao Ming", "--kind", "person", str(clips["interview"]))
    assert added.returncode == 0, added.stderr
    out = json.loads(added.stdout)
    assert out["accepted"] and all(a.startswith("interview.mp4@") for a in out["accepted"])
    assert 1 <= len(out["accepted"]) <= 5 and out["rejected"] == []
    [clip] = out["clips"]
    assert clip["frames_looked_at"] >= 10 and clip["people_seen"][0] > 2 * max(clip["people_seen"][1:] or [0])
    times = [k["t_s"] for k in clip["kept"]]
    assert all(abs(a - b) >= 1.0 for i, a in enumerate(times) for b in times[i + 1:])  # spread over the clip
    assert all(t < 3.0 or t >= 4.0 for t in times)  # never a frame of the other people's scene

    still = encode_video(tmp_path / "photo.mp4", [Scene(cv2.imread(str(clips["yao_photo"])), 2.0, "static")],
                         size=(640, 480), fps=25)
    scanned = likeness(home, "scan", str(still), "--json", "--no-progress")
    assert scanned.returncode == 0, scanned.stderr
    findings = json.loads(scanned.stdout)["findings"]
    assert [f["identity"]["name"] for f in findings] == ["Yao Ming"]


def test_a_clip_without_a_dominant_person_is_refused_unless_one_is_chosen(tmp_path, clips):
    home = tmp_path / "home"
    refused = likeness(home, "gallery", "add", "--name", "Someone", str(clips["pair"]))
    assert refused.returncode != 0
    [rejected] = json.loads(refused.stdout)["rejected"]
    assert "no single dominant person" in rejected["reason"] and "--face" in rejected["reason"]
    chosen = likeness(home, "gallery", "add", "--name", "Someone", "--face", "0", str(clips["pair"]))
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["accepted"]
