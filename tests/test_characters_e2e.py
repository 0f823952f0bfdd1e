"""Characters on real media and the real CLIP tower: an animated character registered from one part of
a trailer clip is found in another part and nowhere else; a live-action character is found through
its actor's face. The CLIP tower costs 0.4-1.6 s per crop on two cores, so every scan is short and the models load once.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import pytest

from pipeline.characters import CharacterConfig, CharacterTrack
from pipeline.image_embedder import ClipImageEmbedder
from pipeline.provenance.reader import read_provenance
from pipeline.scan import Scanner
from pipeline.report import build_report, write_thumbnails
from pipeline.video import probe
from samples.clips import Scene, encode_video
from samples.packages import dlib_johns
from samples.photos import package_photo
from workers.scans import codec
from workers.cli.main import _parser, cmd_gallery_add, main
from workers.runtime import Runtime
from workers.scans.segments import merge_segments
from workers.settings import Settings

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# Shots of Megamind.avi (a DreamWorks trailer excerpt), from frame differences: Roxanne at a restaurant
# table, Megamind (disguised as Bernard) in a medium shot, Roxanne again, Megamind in close-up. Each
# bound lies just before the first frame of its shot (4.129, 6.465, 8.383 s).
MEGAMIND_1, ROXANNE_2, MEGAMIND_2 = (4.12, 6.46), (6.46, 8.38), (8.38, 11.27)
# Registration takes 3 frames of a reference clip: ~9 CLIP calls instead of ~15.
CHARACTERS = CharacterConfig(reference_interval_s=0.75, max_reference_frames=3)


@pytest.fixture(scope="module")
def opencv_data() -> Path:
    """The sample media of Debian's opencv-doc package, installed with apt-get when missing."""
    wanted = [OPENCV_DATA / name for name in ("Megamind.avi", "vtest.avi")]
    if not all(p.is_file() for p in wanted):
        apt = shutil.which("apt-get")
        done = subprocess.run([apt, "install", "-y", "opencv-doc"], capture_output=True, text=True,
                              timeout=900) if apt else None
        if not all(p.is_file() for p in wanted):
            why = "apt-get not found" if done is None else f"exit {done.returncode}: {done.stderr[-1500:]}"
            pytest.fail(f"{OPENCV_DATA} lacks Megamind.avi or vtest.avi and `apt-get install -y opencv-doc` "
                        f"did not provide them ({why})")
    return OPENCV_DATA


def cut_clip(source: Path, target: Path, start_s: float, end_s: float) -> Path:
    """Frames of `source` in [start_s, end_s) re-encoded as H.264: one part of a clip, as a studio sends it."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video = src.streams.video[0]
        stream = out.add_stream("libx264", rate=24, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = video.codec_context.width, video.codec_context.height, "yuv420p"
        for frame in src.decode(video):
            if start_s <= float(frame.pts * video.time_base) < end_s:
                frame.pts = None
                out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return target


@pytest.fixture(scope="module")
def clip_embedder() -> ClipImageEmbedder:
    return ClipImageEmbedder.from_path(providers=["CPUExecutionProvider"], float_activations=True)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, detector, embedder, clip_embedder) -> Runtime:
    """One home for the module, the session's face models and one CLIP tower; no AI-image probe."""
    runtime = Runtime(Settings(home=tmp_path_factory.mktemp("home"), database_url=None, image_probe=False),
                      characters=CHARACTERS)
    runtime._detector, runtime._embedder, runtime._image_embedder = detector, embedder, clip_embedder
    return runtime


def gallery_add(runtime: Runtime, *argv) -> dict:
    """`likeness gallery add ...` on this runtime's models; its JSON output."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cmd_gallery_add(runtime, _parser().parse_args(["gallery", "add", *map(str, argv)])) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def registered(runtime, tmp_path_factory, opencv_data) -> dict[str, dict]:
    """Megamind from a clip of his first shot; John Salley, and a character played by him from other photos."""
    part = cut_clip(opencv_data / "Megamind.avi", tmp_path_factory.mktemp("refs") / "megamind-shot2.mp4",
                    *MEGAMIND_1)
    johns = dlib_johns()["John_Salley"]
    megamind = gallery_add(runtime, "--kind", "character", "--name", "Megamind", "--owner", "dreamworks", part)
    salley = gallery_add(runtime, "--name", "John Salley", "--owner", "salley-mgmt", *johns[:4])
    coach = gallery_add(runtime, "--kind", "character", "--name", "Coach Salley", "--owner", "studio",
                        *johns[4:7], "--played-by", salley["id"])
    return {"megamind": megamind, "salley": salley, "coach": coach, "clip": str(part)}


def test_registration_embeds_clip_frames_with_both_embedders(registered):
    megamind = registered["megamind"]
    assert megamind["kind"] == "character" and megamind["rejected"] == []
    assert megamind["accepted"] == [f"{registered['clip']}@{t}s" for t in ("0.00", "0.75", "1.50")]
    assert megamind["face_references"] == megamind["accepted"]      # his face is in every frame
    assert megamind["image_references"] == 9                       # whole frame, face and salient crop each
    coach = registered["coach"]
    assert coach["played_by"] == ["John Salley"] and len(coach["face_references"]) == 3


def scan(runtime: Runtime, video: Path, **segment):
    runtime.gallery.refresh()
    return runtime.scanner.scan(video, runtime.gallery, **segment)


def test_megamind_is_found_in_the_other_part_of_the_clip_and_only_there(runtime, registered, tmp_path, opencv_data):
    """Scanned from Roxanne's second shot on: the close-up shot is Megamind, Roxanne is not."""
    result = scan(runtime, opencv_data / "Megamind.avi", start_s=ROXANNE_2[0])
    character = [(t, m) for t, m in zip(result.characters.tracks, result.characters.matches)]
    assert character, "the image path found nothing"
    for track, _ in character:
        assert all(MEGAMIND_2[0] - 0.01 <= h.t_s < MEGAMIND_2[1] for h in track.hits), track.hits
    matched = [t for t, m in character if m.status == "match" and m.identity.name == "Megamind"]
    assert matched and matched[0].start_s <= MEGAMIND_2[0] + 0.2 and matched[0].end_s >= 10.0

    findings = [f for f in result.findings if f.category == "ip_character"]
    assert [f.identity.name for f in findings] == ["Megamind"]
    finding = findings[0]
    assert finding.identity.owner == "dreamworks" and finding.match.status == "match"
    assert any(isinstance(t, CharacterTrack) for t in finding.tracks)
    assert finding.reasons[0].startswith("character Megamind, found by its")

    report = build_report(result)
    (entry,) = report["findings"]
    assert entry["category"] == "ip_character" and entry["identity"]["owner"] == "dreamworks"
    assert entry["evidence"] and all(MEGAMIND_2[0] - 0.01 <= e["t_s"] < MEGAMIND_2[1] for e in entry["evidence"])
    assert report["character_tracks"]["frames_embedded"] >= 3
    written = write_thumbnails(result, tmp_path / "evidence")
    assert matched[0].track_id in written and cv2.imread(str(written[matched[0].track_id])) is not None


def scanner_embedding_every_face(runtime: Runtime) -> Scanner:
    """The module's scanner, but analysing every sample and embedding every face: segments then see
    exactly the faces a whole scan sees (coarse to fine starts its grid at each segment's first frame)."""
    scan_config = runtime.settings.scan
    tracking = scan_config.tracking.model_copy(update={"reembed_every_s": 0.0})
    sampling = scan_config.sampling.model_copy(update={"coarse_interval_s": 0.0})
    config = scan_config.model_copy(update={"tracking": tracking, "sampling": sampling})
    base = runtime.scanner
    return Scanner(base.detector, base.embedder, config, base.synthetic, base.policy, base.characters)


@pytest.mark.parametrize("tracking", ["embed-every-face", "default"])
def test_segments_merged_report_the_character_of_a_whole_scan(runtime, registered, opencv_data, tracking):
    """The service's path: each segment observed apart and carried as JSON, as between workers, then
    merged. Megamind's close-up is cut at 9.46 s, leaving one frame of him before the cut: decided per
    segment that frame is no track; pooled, the samples make one track across the cut. With every face
    embedded the findings equal the whole scan's; by default segments embed a few more faces after a
    cut, which may let the face path find the character too (docs/service.md), so the finding's span
    and reasons may differ, not who is found or what is done."""
    scanner = scanner_embedding_every_face(runtime) if tracking == "embed-every-face" else runtime.scanner
    path, cut_s = opencv_data / "Megamind.avi", ROXANNE_2[0] + 3.0   # on a sampling instant of the whole scan
    runtime.gallery.refresh()
    whole = build_report(scanner.scan(path, runtime.gallery, start_s=ROXANNE_2[0], uploader="u1"))
    observations = [scanner.observe(path, start_s=ROXANNE_2[0], end_s=cut_s), scanner.observe(path, start_s=cut_s)]
    parts = [codec.decode(json.loads(json.dumps(codec.encode(o)))) for o in observations]
    first = parts[0].characters
    assert [m.status for m in scanner.characters.decide(first.samples, first.frames_embedded, 1).matches] != ["match"]

    merged = build_report(merge_segments(probe(path, runtime.settings.scan.sampling), read_provenance(path),
                                         parts[::-1], scanner, runtime.gallery, "u1"))
    decided = ("identity", "category", "status", "action") + (("start_s", "end_s", "reasons", "similarity")
                                                             if tracking == "embed-every-face" else ())
    assert [{k: f[k] for k in decided} for f in merged["findings"]] == [{k: f[k] for k in decided}
                                                                        for f in whole["findings"]]
    assert [f["category"] for f in merged["findings"]] == ["ip_character"] and merged["verdict"] == whole["verdict"]
    (track,) = [t for t in merged["character_tracks"]["tracks"] if t["match"]]
    assert track["match"]["name"] == "Megamind" and track["start_s"] < cut_s <= track["end_s"]


def people_video(folder: Path) -> Path:
    """Real photos of people unrelated to every registered likeness, cut together with motion."""
    image = lambda p: cv2.imread(str(p))  # noqa: E731
    scenes = [Scene(image(package_photo("gdp.jpg")), 1.5, "pan"),
              Scene(image(package_photo("players.jpg")), 1.5, "zoom_in"),
              Scene(image(package_photo("grace_hopper.jpg")), 1.5, "static"),
              Scene(image(dlib_johns()["John_Simm"][0]), 1.5, "zoom_out")]
    return encode_video(folder / "people.mp4", scenes, size=(640, 360), fps=25)


@pytest.mark.parametrize("video", ["people", "vtest"])
def test_no_character_in_real_footage_of_unrelated_people(runtime, registered, tmp_path, opencv_data, video):
    path = people_video(tmp_path) if video == "people" else opencv_data / "vtest.avi"
    result = scan(runtime, path, **({"end_s": 4.0} if video == "vtest" else {}))
    assert result.characters.frames_embedded >= 2
    assert result.characters.tracks == [], [(t.hits, m.reason) for t, m in
                                            zip(result.characters.tracks, result.characters.matches)]
    assert [f for f in result.findings if f.identity.kind == "character"] == []


def test_a_live_action_character_is_found_through_its_actors_face(runtime, registered, tmp_path):
    johns = dlib_johns()["John_Salley"]
    scenes = [Scene(cv2.imread(str(p)), 1.5, "static") for p in johns[8:10]]
    result = scan(runtime, encode_video(tmp_path / "salley.mp4", scenes, size=(640, 360), fps=25))
    coach = [f for f in result.findings if f.identity.name == "Coach Salley"]
    assert coach and coach[0].category == "ip_character" and coach[0].identity.owner == "studio"
    assert any(not isinstance(t, CharacterTrack) for t in coach[0].tracks)  # the face path found it
    assert coach[0].reasons[0].startswith("character Coach Salley (played by John Salley), found by its face")
    entry = next(f for f in build_report(result)["findings"] if f["identity"]["name"] == "Coach Salley")
    assert entry["identity"]["played_by"] == ["John Salley"]


def test_played_by_is_only_for_characters(tmp_path, capsys):
    argv = ["--home", str(tmp_path), "gallery", "add", "--name", "Yao", str(package_photo("yaoming.jpg")),
            "--played-by", "someone"]
    assert main(argv) == 2
    assert "--played-by is for --kind character" in capsys.readouterr().err
