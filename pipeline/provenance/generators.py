"""Known AI video/image generators, recognised by name in tool-naming metadata fields.

Only fields that name the producing software are matched (encoder, handler, comment, software,
CreatorTool, C2PA claim generator ...): titles and descriptions are user text, where "Sora" or
"Luma" is as likely a subject as a tool. A match is a declaration by the file, not proof.
"""
from __future__ import annotations

import re

GENERATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE)) for name, pattern in (
        ("OpenAI Sora", r"\bsora\b"),
        ("Runway", r"\brunway(ml)?\b"),
        ("Pika", r"\bpika(\s?labs|\.art)?\b"),
        ("Kling (Kuaishou)", r"\bkling\b|可灵"),
        ("Seedance / Doubao / Jimeng (ByteDance)", r"seedance|doubao|jimeng|dreamina|即梦|豆包"),
        ("Google Veo", r"google\s*veo|\bveo[\s-]?\d"),  # bare "Veo" is also a sports-camera brand
        ("Hailuo / MiniMax", r"hailuo|minimax|海螺"),
        ("Luma Dream Machine", r"\bluma(\s?(ai|labs))?\b|dream\s?machine"),
        ("Stable Video Diffusion", r"stable[\s_-]?(video|diffusion)|\bsvd(_xt)?\b|stability\s?ai"),
        ("Vidu (Shengshu)", r"\bvidu\b"),
        ("Wan / Tongyi Wanxiang (Alibaba)", r"wanx|tongyi|通义万相|\bwan\s?2\.\d"),
        ("Hunyuan Video (Tencent)", r"hunyuan|混元"),
        ("PixVerse", r"pixverse"),
        ("Hedra / HeyGen / Synthesia / D-ID", r"\bhedra\b|heygen|synthesia|\bd-id\b"),
        ("Adobe Firefly", r"firefly"),
        ("Midjourney", r"midjourney"),
        ("DALL-E / GPT image", r"dall[\s·-]?e|gpt-image"),
        ("CogVideo / Qingying (Zhipu)", r"cogvideo|清影"),
        ("LTX-Video (Lightricks)", r"ltx-?video"),
        ("ComfyUI / AnimateDiff", r"comfyui|animatediff"),
    )
)

# Normalised key names (last ":"/"." segment, lower case) of fields that name a tool.
TOOL_KEYS = frozenset({
    "encoder", "encoded_by", "handler_name", "comment", "software", "creatortool", "creation_tool",
    "tool", "creator", "generator", "make", "model", "producer", "application",
    "claim_generator", "softwareagent",
})


def tool_key(key: str) -> bool:
    return re.split(r"[:.]", key.lower())[-1] in TOOL_KEYS


def match_generator(value: str) -> str | None:
    """Name of the first known generator the value names, or None."""
    for name, pattern in GENERATORS:
        if pattern.search(value):
            return name
    return None
