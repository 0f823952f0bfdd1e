"""A post (a note, a carousel) as one unit: several images and videos and a caption, one verdict.

Every item is observed by the stages a video is (images through `image_scan`) and decided by the same
`Scanner.decide`, with the post's declaration: the platform's own declaration field or a caption that
declares AI ("#AI生成", "AI-generated") counts as the uploader's declaration for every item, since
the uploader declared the post. The post's verdict is its most severe item's, with every item's reasons.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.faces.identify import GallerySearcher
from pipeline.image_scan import MediaKind, load_image, media_kind, observe_image
from pipeline.near_duplicates import Fingerprint, fingerprint
from pipeline.onscreen.marks import match_line
from pipeline.policy import SEVERITY, Action, Verdict
from pipeline.scan import ScanResult, Scanner
from pipeline.types import VideoInfo
from pipeline.video import VideoInputError, probe

MAX_ITEMS = 35          # platforms cap a carousel at 18-35 items
MAX_CAPTION_CHARS = 5000
_HASHTAG = re.compile(r"#[^\s#]+")
_SENTENCE = re.compile(r"[\n\r。！？!?；;|]+|(?<=[A-Za-z0-9)])\.\s")


@dataclass(frozen=True)
class Declaration:
    """Whether the uploader declared the post AI: the platform's field, and the caption's own words."""

    declared_field: bool           # the platform's declaration field (--declared-ai, declared_ai)
    caption: tuple[str, ...] = ()  # the caption's parts that declare it ("#AI生成", "内容由AI生成")

    @property
    def declared(self) -> bool:
        return self.declared_field or bool(self.caption)


def caption_declarations(caption: str) -> tuple[str, ...]:
    """The parts of a caption that declare AI: each hashtag on its own ("#AI生成", "#AI_generated") and
    each line or sentence, read by the on-screen label patterns (pipeline/onscreen/marks.py), so a
    declaration must be a standalone label, not a sentence about AI ("AI-generated images flood feeds"
    and "not AI-generated" declare nothing)."""
    parts = [tag.replace("_", "-") for tag in _HASHTAG.findall(caption)]
    without_tags = _HASHTAG.sub("\n", caption)
    parts += [p.strip() for p in _SENTENCE.split(without_tags) if p.strip()]
    said = []
    for part in parts:
        if any(m.kind == "label" for m in match_line(part)) and part not in said:
            said.append(part)
    return tuple(said)


def declaration_of(caption: str, declared_field: bool) -> Declaration:
    if len(caption) > MAX_CAPTION_CHARS:
        raise ValueError(f"caption of {len(caption)} characters, over the {MAX_CAPTION_CHARS} limit")
    return Declaration(declared_field, caption_declarations(caption))


@dataclass(frozen=True)
class PostItem:
    """One file of a post, checked: its kind and what the check read (a video's probe)."""

    index: int
    path: Path
    kind: MediaKind
    info: VideoInfo


@dataclass
class PostResult:
    items: list[PostItem]
    results: list[ScanResult]      # one per item, in order
    declaration: Declaration
    caption_chars: int
    verdict: Verdict
    warnings: list[str] = field(default_factory=list)
    pictures: list[tuple[int, Fingerprint]] = field(default_factory=list)  # image items' hashes (near_duplicates)

    @property
    def gallery_version(self) -> int:
        return max((r.gallery_version for r in self.results), default=0)


def check_items(paths: Sequence[Path], scanner: Scanner) -> list[PostItem]:
    """Every item readable before any model runs: one bad file refuses the post, naming the item."""
    if not paths:
        raise VideoInputError("a post needs at least one image or video")
    if len(paths) > MAX_ITEMS:
        raise VideoInputError(f"a post of {len(paths)} items, over the {MAX_ITEMS} limit")
    items = []
    for index, path in enumerate(paths):
        try:
            kind = media_kind(path)
            info = load_image(path, scanner.config.sampling)[0] if kind == "image" \
                else probe(Path(path), scanner.config.sampling)
        except VideoInputError as exc:
            raise VideoInputError(f"item {index}: {exc}") from exc
        items.append(PostItem(index, Path(path), kind, info))
    return items


def scan_post(scanner: Scanner, items: Sequence[PostItem], gallery: GallerySearcher | None,
              uploader: str | None, caption: str = "", declared_field: bool = False) -> PostResult:
    """Observe and decide every item against the same gallery, with the post's declaration."""
    declaration = declaration_of(caption, declared_field)
    results, pictures = [], []
    for item in items:
        if item.kind == "image":
            loaded = load_image(item.path, scanner.config.sampling)
            pictures.append((item.index, fingerprint(loaded[1])))
            observation = observe_image(scanner, item.path, loaded)
        else:
            observation = scanner.observe(item.path, info=item.info, gallery=gallery)
        results.append(scanner.decide(observation, gallery, uploader, declaration.declared))
    warnings = [f"item {i.index}: {w}" for i, r in zip(items, results) for w in r.warnings]
    return PostResult(list(items), results, declaration, len(caption), post_verdict(items, results), warnings,
                      [p for p in pictures if p[1].usable])


def post_verdict(items: Sequence[PostItem], results: Sequence[ScanResult]) -> Verdict:
    """The most severe item's action; the reasons of every item that is not simply allowed, each
    naming its item, so a platform acting on the post sees which image or clip is why."""
    action, reasons = Action.ALLOW, []
    for item, result in zip(items, results):
        if SEVERITY[result.verdict.action] > SEVERITY[action]:
            action = result.verdict.action
        if result.verdict.action is not Action.ALLOW:
            reasons += [f"item {item.index} ({item.kind} {item.path.name}): {r}" for r in result.verdict.reasons]
    if not reasons:
        reasons = [f"all {len(items)} items allowed: no protected likeness used against its owner's policy and "
                   "no AI evidence found"]
    return Verdict(action, reasons)
