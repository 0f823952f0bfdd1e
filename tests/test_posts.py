"""Posts end to end on real photos and real models: a carousel with one AI image (C2PA-declared, HEIC)
of a registered person among real photos (JPEG, PNG, WebP, AVIF), the caption's declaration, and a
post with one broken item refused whole."""
from __future__ import annotations

import json
from pathlib import Path

import pillow_avif  # noqa: F401  (AVIF encoder for the fixture)
import pytest
from PIL import Image
from pillow_heif import register_heif_opener

from pipeline.post import caption_declarations, check_items, scan_post
from pipeline.report import build_post_report
from pipeline.video import VideoInputError
from samples.broken import write_text_as_mp4
from samples.photos import package_photo
from tests.conftest import make_runtime
from tests.provenance_fixtures import sign_c2pa
from workers.cli.main import main

register_heif_opener()


@pytest.mark.parametrize("caption, said", [
    ("周末去海边 #AI生成 #旅行", ("#AI生成",)),
    ("new look ✨ #AI_generated", ("#AI-generated",)),
    ("作者声明：内容由AI生成", ("作者声明：内容由AI生成",)),
    ("Made with AI. Enjoy!", ("Made with AI",)),
    ("AI-generated images flood social media", ()),
    ("this is not AI-generated", ()),
    ("AI生成内容新规出台，平台怎么做", ()),
    ("#AIGC #photography", ()),
    ("", ()),
])
def test_caption_declarations(caption, said):
    assert caption_declarations(caption) == said


@pytest.fixture(scope="module")
def carousel(tmp_path_factory) -> list[Path]:
    """A registered person's photo made 'AI' by a signed C2PA manifest (trainedAlgorithmicMedia) and
    stored as HEIC, among three real photos of other people in JPEG, WebP and AVIF and one PNG."""
    folder = tmp_path_factory.mktemp("carousel")
    Image.open(package_photo("yaoming.jpg")).save(folder / "plain.heic", quality=85)
    ai = sign_c2pa(folder / "plain.heic", folder / "ai.heic", "image/heic", "trainedAlgorithmicMedia")
    Image.open(package_photo("t1.jpg")).save(folder / "t1.webp", quality=85)
    Image.open(package_photo("gdp.jpg")).save(folder / "gdp.avif", quality=85)
    return [package_photo("grace_hopper.jpg"), ai, folder / "t1.webp", package_photo("astronaut.png"),
            folder / "gdp.avif"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, detector, embedder) -> Path:
    runtime = make_runtime(tmp_path_factory.mktemp("home"), detector, embedder)
    runtime.gallery.add("Yao Ming", "person", "nba", "ai_if_labelled", [],
                        runtime.enroller.enroll([package_photo("yaoming.jpg")]))
    return runtime.settings.home


def _scan(home, detector, embedder, files, caption="", declared=False):
    runtime = make_runtime(home, detector, embedder)
    runtime.gallery.refresh()
    items = check_items(files, runtime.scanner)
    return scan_post(runtime.scanner, items, runtime.gallery, "someone", caption, declared)


def test_carousel_one_ai_image_of_a_registered_person(home, carousel, detector, embedder):
    result = _scan(home, detector, embedder, carousel)
    report = build_post_report(result)
    assert report["post"]["kinds"] == ["image"] * 5
    assert [i["video"]["codec"] for i in report["items"]] == ["jpeg", "heic", "webp", "png", "avif"]
    # Only the AI image of the registered person is a finding, on its own item; the real photos pass.
    assert [(f["item"], f["identity"]["name"], f["category"]) for f in report["findings"]] == \
        [(1, "Yao Ming", "impersonation")]
    assert report["items"][1]["provenance"]["declares_ai"]
    assert [i["verdict"]["action"] for i in report["items"]] == ["allow", "restrict", "allow", "allow", "allow"]
    assert all(len(i["tracks"]) >= 1 for i in report["items"][:4])  # every real photo's faces were seen
    assert report["verdict"]["action"] == "restrict"
    assert all(r.startswith("item 1 (image ai.heic)") for r in report["verdict"]["reasons"])
    json.dumps(report)

    # The same carousel with "#AI生成" in its caption: the uploader declared it, so the label is its duty.
    declared = build_post_report(_scan(home, detector, embedder, carousel, caption="新造型 #AI生成"))
    assert declared["post"]["declaration"] == {"declared": True, "declared_field": False, "caption": ["#AI生成"]}
    assert declared["findings"][0]["action"] == "label"
    assert declared["verdict"]["action"] == "label"


def test_a_broken_item_refuses_the_post_naming_it(tmp_path, home, carousel, detector, embedder):
    bad = write_text_as_mp4(tmp_path / "note.mp4")
    runtime = make_runtime(home, detector, embedder)
    with pytest.raises(VideoInputError, match=r"^item 1: .*note.mp4"):
        check_items([carousel[0], bad], runtime.scanner)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(package_photo("yaoming.jpg").read_bytes()[:600])
    with pytest.raises(VideoInputError, match=r"^item 0: .*jpeg image cannot be decoded"):
        check_items([truncated], runtime.scanner)


def test_cli_scans_a_post(home, carousel, capsys):
    code = main(["--home", str(home), "scan", "--json", "--no-progress", "--declared-ai", str(carousel[1]),
                 str(carousel[0])])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["post"]["declaration"]["declared_field"] is True
    assert [f["item"] for f in report["findings"]] == [0]
    assert report["verdict"]["action"] == "label"
