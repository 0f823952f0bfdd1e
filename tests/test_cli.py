"""The `likeness` command as a user runs it: real subprocesses, real files, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest
from skimage import data

from pipeline import scan as scan_module
from pipeline.video import probe
from samples.broken import (write_audio_only, write_huge_frame_video, write_text_as_mp4, write_truncated_mp4,
                            write_zero_byte)
from samples.clips import Scene, encode_video
from samples.photos import package_photo
from workers.cli import main as cli


def likeness(home, *args):
    return subprocess.run([sys.executable, "-m", "workers.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    players = cv2.imread(str(package_photo("players.jpg")))
    scenes = [Scene(players, 2.0, "static", crop=(600.0, 80.0, 900.0, 300.0))]
    return encode_video(tmp_path_factory.mktemp("clip") / "yao.mp4", scenes, size=(640, 360), fps=25)


def test_add_list_scan_remove(tmp_path, clip):
    home = tmp_path / "home"
    added = likeness(home, "gallery", "add", "--name", "Yao Ming", "--owner", "nba", "--policy", "no_ai",
                     str(package_photo("yaoming.jpg")))
    assert added.returncode == 0, added.stderr
    identity = json.loads(added.stdout)
    assert identity["name"] == "Yao Ming" and len(identity["accepted"]) == 1 and identity["rejected"] == []

    listed = json.loads(likeness(home, "gallery", "list", "--json").stdout)
    assert [(i["id"], i["references"]) for i in listed] == [(identity["id"], 1)]

    out = tmp_path / "report.json"
    scanned = likeness(home, "scan", str(clip), "--json", "--out", str(out))
    assert scanned.returncode == 0, scanned.stderr
    report = json.loads(scanned.stdout)
    assert json.loads(out.read_text()) == report
    assert {"video", "provenance", "synthetic", "tracks", "findings", "verdict", "timings_ms"} <= set(report)
    assert [f["identity"]["name"] for f in report["findings"]] == ["Yao Ming"]
    assert report["findings"][0]["evidence"] and report["findings"][0]["category"] == "portrait_rights"
    assert "scanning" in scanned.stderr  # the progress bar

    removed = likeness(home, "gallery", "remove", identity["id"])
    assert removed.returncode == 0, removed.stderr
    assert json.loads(likeness(home, "gallery", "list", "--json").stdout) == []
    assert not (home / "references" / identity["id"]).exists()
    rescanned = json.loads(likeness(home, "scan", str(clip), "--json").stdout)
    assert rescanned["findings"] == [] and rescanned["tracks"]


def test_reference_rejections_say_why(tmp_path):
    home = tmp_path / "home"
    cat = tmp_path / "cat.png"
    cv2.imwrite(str(cat), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = likeness(home, "gallery", "add", "--name", "Nobody", str(cat), str(text),
                      str(package_photo("players.jpg")))
    assert result.returncode != 0
    reasons = {r["file"].rsplit("/", 1)[-1]: r["reason"] for r in json.loads(result.stdout)["rejected"]}
    assert reasons["cat.png"] == "no face found"
    assert reasons["notes.jpg"] == "not a readable image"
    assert reasons["players.jpg"].startswith("several faces")
    assert len(result.stderr.strip().splitlines()) == 1
    picked = likeness(home, "gallery", "add", "--name", "Biggest", "--face", "largest",
                      str(package_photo("players.jpg")))
    assert picked.returncode == 0, picked.stderr


@pytest.mark.parametrize("make", [
    lambda d, clip: write_text_as_mp4(d / "text.mp4"),
    lambda d, clip: write_truncated_mp4(d / "cut.mp4", clip, "mdat"),
    lambda d, clip: write_zero_byte(d / "zero.mp4"),
    lambda d, clip: write_audio_only(d / "audio.m4a"),
    lambda d, clip: write_huge_frame_video(d / "huge.mp4"),
    lambda d, clip: d / "missing.mp4",
], ids=["text", "truncated", "zero-byte", "audio-only", "8k-frame", "missing"])
def test_bad_video_is_one_line_error_and_writes_nothing(tmp_path, clip, make):
    path = make(tmp_path, clip)
    out = tmp_path / "out" / "report.json"
    result = likeness(tmp_path / "home", "scan", str(path), "--json", "--out", str(out))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("likeness: error:"), result.stderr
    assert result.stdout == ""
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_a_stricter_threshold_for_one_likeness(tmp_path, clip):
    """A likeness known to be confused with look-alikes gets its own, higher threshold."""
    home = tmp_path / "home"
    added = likeness(home, "gallery", "add", "--name", "Yao Ming", "--threshold", "0.99",
                     str(package_photo("yaoming.jpg")))
    assert added.returncode == 0, added.stderr
    report = json.loads(likeness(home, "scan", str(clip), "--json", "--no-progress").stdout)
    decisions = [t["decision"] for t in report["tracks"]
                 if t["decision"]["candidate"] == "Yao Ming" and t["decision"]["similarity"] >= 0.40]
    assert decisions and all(d["status"] == "weak" for d in decisions)
    assert "this likeness's own threshold 0.99" in decisions[0]["reason"]
    assert report["findings"] == []
    listed = json.loads(likeness(home, "gallery", "list", "--json").stdout)
    assert [i["match_threshold"] for i in listed] == [0.99]


@pytest.mark.parametrize("args, reason", [
    (["--threshold", "1.5"], "match threshold must be a cosine similarity from -1 to 1, not 1.5"),
    (["--threshold", "nan"], "match threshold must be a cosine similarity from -1 to 1, not nan"),
    (["--kind", "character", "--threshold", "0.5"], "--threshold is for --kind person"),
], ids=["above-1", "nan", "character"])
def test_a_threshold_out_of_range_is_refused(tmp_path, args, reason):
    result = likeness(tmp_path / "home", "gallery", "add", "--name", "Yao Ming", *args,
                      str(package_photo("yaoming.jpg")))
    assert result.returncode == 2 and result.stderr.strip() == f"likeness: error: {reason}"


def test_uploaders_are_plain_ids_in_one_local_namespace(tmp_path, clip):
    """The embedded CLI compares --uploader as given: the owner and --authorize ids, no platform prefix."""
    home = tmp_path / "home"
    added = likeness(home, "gallery", "add", "--name", "Yao Ming", "--owner", "nba", "--policy", "no_use",
                     str(package_photo("yaoming.jpg")), "--authorize", "creator-42")
    assert added.returncode == 0, added.stderr
    for uploader in ("creator-42", "nba"):
        report = json.loads(likeness(home, "scan", str(clip), "--json", "--no-progress", "--uploader", uploader).stdout)
        assert [(f["action"], f["reasons"]) for f in report["findings"]] == \
            [("allow", [f"uploader {uploader} is authorised by the owner of Yao Ming (person, owner nba)"])]


def test_scan_probes_the_video_once(runtime, clip, monkeypatch):
    """The CLI probes before any model loads (bad input fails fast); the scan reuses that probe."""
    probed = []

    def counting_probe(path, config):
        probed.append(path)
        return probe(path, config)

    monkeypatch.setattr(cli, "probe", counting_probe)
    monkeypatch.setattr(scan_module, "probe", counting_probe)
    result = cli.run_scan(runtime, clip, None, show_progress=False)
    assert probed == [clip]
    assert result.info.duration_s == pytest.approx(2.0, abs=0.1) and result.timings_ms["probe"] > 0
    assert result.frames_sampled > 0 and result.tracks
