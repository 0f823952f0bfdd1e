"""What read text means: a video generator's visible mark, or an explicit label saying it is AI.

Each OCR line is normalised (``normalize``) and matched against ``PATTERNS``. Every pattern says
where its wording comes from. Rules that keep ordinary text out (tested in
tests/pipeline/test_onscreen.py):

- A line counts only when it is a standalone short line: once the matched words and the filler that
  marks and labels carry (``@handle``, "AI", "made with", "Gen-4", "内容由", "请谨慎甄别"...) are
  taken out, at most one letter or character may be left. "AI生成内容新规" in a news ticker,
  "Gemini Street" on a sign or "AI-generated images flood social media" in a caption are not labels.
- Latin words are bounded ("Pikachu" is not Pika, "Klingon" not Kling); CJK words are bounded by the
  standalone rule ("可灵活" is not 可灵).
- The recogniser's confidence must reach a floor (``min_confidence``, ``OnScreenConfig``).
- A brand that is also an ordinary word (Sora, Pika, Luma, Runway, Veo, Gemini, Kling, Vidu, 可灵,
  豆包, 海螺, 混元; strength "weak") counts only where generators put their marks: a small line near
  a corner of the frame. "Sora" anywhere counts with an ``@handle`` on its line or right next to it
  (the Sora app's moving mark).

OCR mistakes tolerated: full-width forms (NFKC), traditional forms of the patterns' characters,
0/O, 1/l/I, 5/S, rn/m, vv/w in Latin words, letter-spaced words, "Al" for "AI", and for a line that
is a whole brand name of five letters or more one wrong, lost or extra letter (two in single
words from eight letters), a cut-off end ("Dreami" for Dreamina), or one wrong character of a
four-character Chinese name ("通义方相").
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.onscreen.ocr import TextHit

Kind = Literal["mark", "label"]
Strength = Literal["strong", "weak"]

# Traditional -> simplified for the characters the patterns use (OCR reads 内 as 內 often).
_TRADITIONAL = str.maketrans({"內": "内", "靈": "灵", "夢": "梦", "騰": "腾", "訊": "讯", "視": "视", "頻": "频",
                              "標": "标", "識": "识", "為": "为", "圖": "图", "製": "制", "聲": "声", "於": "于",
                              "該": "该", "請": "请", "謹": "谨", "慎": "慎", "別": "别", "術": "术", "畫": "画",
                              "貼": "贴", "體": "体", "現": "现", "實": "实"})


def normalize(text: str) -> str:
    """NFKC (full-width to half-width: "ＡＩ" -> "AI", "＠" -> "@"), the few traditional characters
    above to simplified, lower case, every dash to "-", whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower()
    text = re.sub(r"[\u2010-\u2015\u2212\u30fc]", "-", text)
    return re.sub(r"\s+", " ", text).strip()


# OCR confusions allowed for each Latin letter of a pattern word.
_CONFUSABLE = {"o": "[o0]", "0": "[o0]", "i": "[il1|!]", "l": "[il1|!]", "1": "[il1|!]", "s": "[s5$]",
               "a": "[a@]", "g": "[g9]", "b": "[b8]", "z": "[z2]", "u": "[uv]", "m": "(?:m|rn)", "w": "(?:w|vv)"}


def fuzzy(word: str) -> str:
    """Regex for a lower-case Latin phrase, tolerant to the confusions above; short words may be
    letter-spaced ("P I K A"); a space in the phrase matches any spacing, dot or dash."""
    parts = []
    for ch in word:
        if ch == " ":
            parts.append(r"[\s.\-]*")
        elif ch == "-":
            parts.append(r"[\s\-]?")
        else:
            parts.append(_CONFUSABLE.get(ch, re.escape(ch)))
    return " ?".join(parts) if len(word) <= 6 else "".join(parts)


_L, _R = r"(?<![a-z0-9])", r"(?![a-z0-9])"  # Latin word boundaries; CJK next to a word is a boundary
_AI = fuzzy("ai")


def word(phrase: str) -> str:
    """A bounded fuzzy phrase; an "AI" glued on is allowed ("HailuoAI", "KlingAl")."""
    return f"{_L}{fuzzy(phrase)}(?:{_AI})?{_R}"


def any_of(*phrases: str) -> str:
    return "|".join(word(p) for p in phrases)


@dataclass(frozen=True)
class Pattern:
    id: str
    kind: Kind
    generator: str | None   # which generator a mark names; None for labels
    regex: str
    strength: Strength
    source: str             # where the wording comes from


# Where the wordings come from. Marks: the generator's own name as it appears in its visible
# watermark or its product name; "watermark" below means the generator stamps it on free or app
# outputs. Labels: GB 45438-2025 (《网络安全技术 人工智能生成合成内容标识方法》, in force 2025-09-01)
# requires an explicit label to contain "人工智能" or "AI" and "生成" and/or "合成"; Chinese
# platforms' label wordings follow it ("内容由AI生成", "疑似AI生成", "作者声明：内容由AI生成");
# English labels are the platforms' own (TikTok "AI-generated", "Creator labeled as AI-generated";
# Meta "Made with AI", 2024; YouTube "Altered or synthetic content").
PATTERNS: tuple[Pattern, ...] = (
    # OpenAI Sora (Sora app, 2025): a moving cloud logo with "Sora" and the creator's "@handle".
    Pattern("sora_handle", "mark", "sora", word("sora") + r"(?=.{0,3}@[a-z0-9])", "strong",
            "Sora app watermark: 'Sora' with the creator's @handle"),
    Pattern("sora", "mark", "sora", word("sora"), "weak",
            "'Sora' alone (also a name, and 'sky' in Japanese): a corner mark, or next to an @handle"),
    # Google Veo (Veo 3 in Gemini and Flow): a visible "Veo" mark bottom-right; Gemini app wordmark.
    Pattern("veo", "mark", "veo", word("veo") + r"(?:\s?\d(?:\.\d)?)?", "weak",
            "Veo visible watermark ('Veo', Spanish 'I see')"),
    Pattern("gemini", "mark", "gemini", word("gemini"), "weak", "Gemini wordmark (also a star sign)"),
    # Pika: free-plan "MADE WITH PIKA" watermark; the Pika wordmark.
    Pattern("pika_made", "mark", "pika", _L + r"(?:[a-z]{0,4}\s?)?" + fuzzy("with") + r"\s?.?" + fuzzy("pika") + _R
            + "|" + any_of("pika labs", "pika.art"), "strong",
            "Pika watermark 'MADE WITH PIKA' (its first word often misread when small: 'ADE WITH PIKA')"),
    Pattern("pika", "mark", "pika", word("pika"), "weak", "Pika wordmark alone"),
    # Luma AI Dream Machine: "Dream Machine" / "Luma AI" wordmarks.
    Pattern("luma_dream_machine", "mark", "luma", any_of("dream machine", "luma ai", "lumalabs", "luma labs"),
            "strong", "Luma AI's Dream Machine wordmark"),
    Pattern("luma", "mark", "luma", word("luma"), "weak", "'LUMA' wordmark alone"),
    # Runway: "Runway" wordmark, with its model names Gen-3 / Gen-4.
    Pattern("runway_gen", "mark", "runway", word("runway") + r"\s?(?:ml|gen[\s\-]?\d(?:\.\d)?)|"
            + any_of("runwayml", "made with runway"), "strong", "Runway wordmark with its model name (Gen-N)"),
    Pattern("runway", "mark", "runway", word("runway"), "weak", "'Runway' alone (an ordinary word)"),
    # Kuaishou Kling / 可灵: "可灵AI" / "KLING AI" watermark bottom-right.
    Pattern("kling_ai", "mark", "kling", any_of("kling ai") + r"|可灵\s?" + _AI + _R, "strong",
            "Kling watermark '可灵AI' / 'KLING AI'"),
    Pattern("kling", "mark", "kling", word("kling") + r"|可灵", "weak", "Kling / 可灵 alone"),
    # ByteDance Jimeng (即梦, China) / Dreamina (international); Doubao (豆包); Seedance (video model).
    Pattern("jimeng", "mark", "jimeng", r"即梦|" + any_of("jimeng", "dreamina"), "strong",
            "ByteDance watermark '即梦AI' / 'Dreamina'"),
    Pattern("doubao_ai", "mark", "doubao", r"豆包\s?(?:" + _AI + _R + "|生成)|" + word("doubao"), "strong",
            "Doubao watermark '豆包AI生成'"),
    Pattern("doubao", "mark", "doubao", r"豆包", "weak", "豆包 alone (also a steamed bun)"),
    Pattern("seedance", "mark", "seedance", word("seedance"), "strong", "ByteDance's Seedance video model"),
    # MiniMax Hailuo / 海螺: "海螺AI" / "Hailuo AI" / "MiniMax" wordmarks.
    Pattern("hailuo_ai", "mark", "hailuo", r"海螺\s?(?:" + _AI + _R + "|视频)|" + any_of("hailuo", "minimax"),
            "strong", "MiniMax watermark '海螺AI' / 'Hailuo AI' / 'MiniMax'"),
    Pattern("hailuo", "mark", "hailuo", r"海螺", "weak", "海螺 alone (also a conch)"),
    # Shengshu Vidu; PixVerse; Tencent Hunyuan (混元); Alibaba Wan / Tongyi Wanxiang (通义万相).
    Pattern("vidu_ai", "mark", "vidu", any_of("vidu ai") + "|" + _L + fuzzy("vidu") + r"\.(?:com|studio)" + _R,
            "strong", "Vidu watermark 'Vidu AI'"),
    Pattern("vidu", "mark", "vidu", word("vidu"), "weak", "'Vidu' alone"),
    Pattern("pixverse", "mark", "pixverse", word("pixverse"), "strong", "PixVerse watermark"),
    Pattern("hunyuan", "mark", "hunyuan", r"腾讯混元|混元\s?" + _AI + _R + "|" + word("hunyuan"), "strong",
            "Tencent Hunyuan watermark '腾讯混元' / 'Hunyuan'"),
    Pattern("hunyuan_short", "mark", "hunyuan", r"混元", "weak", "混元 alone (also a martial-arts term)"),
    Pattern("wanxiang", "mark", "wanxiang", r"通义万相|通义\s?" + _AI + _R + "|" + any_of("tongyi wanxiang"), "strong",
            "Alibaba watermark '通义万相'"),
    # Explicit labels.
    Pattern("label_zh", "label", None, r"(?:人工智能|" + _L + _AI + r")\s?(?:生成|合成)", "strong",
            "GB 45438 explicit label: 'AI生成', '人工智能生成', '内容由AI生成', '疑似AI生成', 'AI合成'"),
    Pattern("label_zh_dropped_ai", "label", None, r"由\s?[a-z1|!]{1,2}\s?(?:生成|合成)", "strong",
            "GB 45438 wording '由AI生成' with 'AI' misread by OCR ('内容由A生成')"),
    Pattern("label_en", "label", None,
            any_of("ai-generated", "ai generated", "generated by ai", "generated with ai", "made with ai",
                   "created with ai", "ai-created", "altered or synthetic content"),
            "strong",
            "platform labels: TikTok 'AI-generated', Meta 'Made with AI', YouTube 'Altered or synthetic content'"),
    Pattern("label_en_damaged", "label", None, _L + r"a[il1|!]?[\s\-]?genera[a-z]{0,4}" + _R, "strong",
            "'AI-generated' damaged by OCR ('Algenerate', 'A-generated')"),
)
_COMPILED = tuple((p, re.compile(p.regex)) for p in PATTERNS)

# What else a mark's line may hold and still be a standalone mark.
_MARK_FILLER = re.compile("|".join([
    r"@[\w.\-]{2,30}", word("ai"), word("labs"), word("video"), word("app"), word("studio"), word("by"),
    word("made with"), word("created with"), word("generated with"), r"gen[\s\-]?\d(?:\.\d)?",
    _L + r"v?\d(?:\.\d)?" + _R, r"\.(?:ai|art|com|app|video)" + _R, r"视频|生成|[^\w]"]))
# What else a label's line may hold and still be a label: the platforms' and GB 45438's wordings
# around "AI生成" ("作者声明：内容由AI生成", "本视频由AI生成", "疑似AI生成，请谨慎甄别").
_LABEL_FILLER = re.compile("|".join([
    r"作者声明|声明|请谨慎甄别|请注意甄别|谨慎甄别|注意甄别|内容|视频|图片|图像|画面|作品|本|该|此|由|为|是|系|疑似|"
    r"可能|包含|含|使用了?|技术|标识|合成|生成|[^\w]",
    any_of("this", "the", "video", "image", "content", "is", "was", "label", "labeled as", "creator"),
]))


# A generator's name next to a label is part of the label ("豆包AI生成" is Doubao's mark and a label).
_BRANDS = re.compile("|".join(f"(?:{p.regex})" for p in PATTERNS if p.kind == "mark"))


def _standalone(norm: str, span: tuple[int, int], filler: re.Pattern, brands: bool = False) -> bool:
    rest = norm[:span[0]] + " " + norm[span[1]:]
    if brands:
        rest = _BRANDS.sub(" ", rest)
    rest = filler.sub(" ", rest)
    return len(re.sub(r"\s", "", rest)) <= 1


_HANDLE = re.compile(r"@([a-z0-9][a-z0-9._\-]{1,29})")

# Latin brands of five letters or more, for the one-wrong-letter / cut-off fallback.
_FUZZY_BRANDS = {"gemini": "gemini", "runway": "runway", "jimeng": "jimeng", "dreamina": "jimeng",
                 "doubao": "doubao", "hailuo": "hailuo", "minimax": "hailuo", "seedance": "seedance",
                 "pixverse": "pixverse", "hunyuan": "hunyuan", "dream machine": "luma"}
# Four-character CJK names, for the one-wrong-character fallback (small text: "通义方相").
_FUZZY_CJK = {"腾讯混元": "hunyuan", "通义万相": "wanxiang"}
_WEAK_FUZZY = {"gemini", "runway"}  # ordinary words: a misread one is a corner mark or nothing


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _fuzzy_brand(norm: str) -> tuple[str, str, bool] | None:
    """(brand, generator, whether a model name "Gen-N" follows) for a line that is one brand name misread."""
    cjk = re.sub(r"\s|[^\w]", "", norm)
    for brand, generator in _FUZZY_CJK.items():
        if len(cjk) == len(brand) and sum(a != b for a, b in zip(cjk, brand)) <= 1:
            return brand, generator, False
    core = re.sub(r"[^a-z0-9 ]", "", norm.replace("-", " ")).strip()
    model = re.search(r"\s?gen\s?\d$", core)
    core = core[:model.start()].strip() if model else core
    if len(core) > 6:
        core = re.sub(r"\s?a[il1]$", "", core).strip()
    if len(core) < 5:
        return None
    for brand, generator in _FUZZY_BRANDS.items():
        close = _edit_distance(core, brand) <= (2 if len(brand) >= 8 and " " not in brand else 1)
        cut_off = brand.startswith(core) and len(core) >= 0.7 * len(brand)
        if close or cut_off:
            return brand, generator, model is not None
    return None


@dataclass(frozen=True)
class LineMatch:
    """What one line of text says, before its position and confidence are weighed."""

    kind: Kind
    generator: str | None
    pattern: str
    strength: Strength
    handle: str | None = None


def match_line(text: str) -> list[LineMatch]:
    """Marks and labels one line says (at most one per generator, and one label), by wording alone."""
    norm = normalize(text)
    found: dict[str, LineMatch] = {}
    for pattern, regex in _COMPILED:
        key = pattern.generator or "label"
        if key in found and found[key].strength == "strong":
            continue
        label = pattern.kind == "label"
        for m in regex.finditer(norm):
            if not _standalone(norm, m.span(), _LABEL_FILLER if label else _MARK_FILLER, brands=label):
                continue
            handle = _HANDLE.search(norm) if pattern.generator == "sora" else None
            found[key] = LineMatch(pattern.kind, pattern.generator, pattern.id, pattern.strength,
                                   handle.group(1) if handle else None)
            break
    if not found:
        fallback = _fuzzy_brand(norm)
        if fallback is not None:
            brand, generator, model = fallback
            found[generator] = LineMatch("mark", generator, f"fuzzy:{brand}",
                                         "weak" if brand in _WEAK_FUZZY and not model else "strong")
    return list(found.values())


@dataclass(frozen=True)
class OnScreenFinding:
    """A mark or label read in a frame, with where and how surely."""

    kind: Kind
    generator: str | None
    pattern: str
    text: str
    confidence: float
    box: tuple[int, int, int, int]
    frame: int
    frame_size: tuple[int, int]
    t_s: float | None
    handle: str | None = None

    @property
    def position(self) -> str:
        """Where in the frame, in words ("top-left", "centre", "bottom-right", ...)."""
        w, h = self.frame_size
        cx, cy = (self.box[0] + self.box[2]) / 2 / w, (self.box[1] + self.box[3]) / 2 / h
        row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
        col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
        return "centre" if (row, col) == ("middle", "centre") else f"{row}-{col}"


# A weak brand counts as a mark only near a corner and small, as generators place their marks.
CORNER_ZONE = 0.3    # its box centre within this fraction of the width from a side and of the height from top/bottom
MAX_MARK_HEIGHT = 0.12  # its box at most this fraction of the frame height


def _in_corner(hit: TextHit) -> bool:
    w, h = hit.frame_size
    x0, y0, x1, y1 = hit.box
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    near_side = cx < CORNER_ZONE or cx > 1 - CORNER_ZONE
    near_edge = cy < CORNER_ZONE or cy > 1 - CORNER_ZONE
    return near_side and near_edge and (y1 - y0) / h <= MAX_MARK_HEIGHT


def _next_to(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Two lines of one mark: within three line heights across and two down."""
    line = max(a[3] - a[1], b[3] - b[1], 8)
    dx = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return dx <= 3 * line and dy <= 2 * line


def find_marks(hits: Iterable[TextHit], min_confidence: float) -> list[OnScreenFinding]:
    """The marks and labels among the text read in a few frames (see the module's rules)."""
    hits = [h for h in hits if h.confidence >= min_confidence]
    handles = [(h, m.group(1)) for h in hits if (m := _HANDLE.search(normalize(h.text)))]
    findings = []
    for hit in hits:
        for match in match_line(hit.text):
            handle = match.handle
            if match.strength == "weak":
                if match.generator == "sora" and handle is None:  # "Sora" and an @handle line beside it
                    handle = next((name for other, name in handles
                                   if other.frame == hit.frame and other is not hit and _next_to(hit.box, other.box)),
                                  None)
                if handle is None and not _in_corner(hit):
                    continue
            findings.append(OnScreenFinding(match.kind, match.generator, match.pattern, hit.text, hit.confidence,
                                            hit.box, hit.frame, hit.frame_size, hit.t_s, handle))
    return findings


def summarize(findings: Sequence[OnScreenFinding]) -> tuple[list[str], list[str]]:
    """(generators named by marks, label texts), each once, in order of first sight."""
    generators = list(dict.fromkeys(f.generator for f in findings if f.kind == "mark" and f.generator))
    labels = list(dict.fromkeys(f.text for f in findings if f.kind == "label"))
    return generators, labels
