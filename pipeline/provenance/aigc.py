"""GB 45438-2025 implicit AI labels ("AIGC" JSON) and platforms' own aigc-keyed labels.

The standard's label is a JSON object {Label, ContentProducer, ProduceID, ReservedCode1,
ContentPropagator, PropagateID, ReservedCode2}; Label "1" means AI-generated, "2" possibly,
"3" suspected. Platforms also write labels under their own keys (anything containing "aigc"). Each
convention interpreted here says where its meaning comes from (`CONVENTIONS`). A JSON value under an
aigc key that matches no convention is reported as uninterpreted: it is a declaration we cannot
read, never "no evidence" (the decision sends it to a person).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

GB_FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1",
             "ContentPropagator", "PropagateID", "ReservedCode2")
LABEL_MEANINGS = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}
MAX_JSON_DEPTH = 32   # a label is flat; deeper values are refused before anything recurses into them
_TRUTHY = {"1", "true", "yes", "y"}
_FALSY = {"0", "false", "no", "n", ""}


@dataclass(frozen=True)
class Convention:
    """A platform's own AI-label field inside an aigc-keyed value: its name, how a value reads, and
    where that reading comes from."""

    field: str
    reads: str           # "label_type": 0 none, any other integer a kind of AI label; "flag": truthy / falsy
    source: str


CONVENTIONS: tuple[Convention, ...] = (
    Convention("aigc_label_type", "label_type",
               "ByteDance (TikTok, Douyin, CapCut exports) write aigc_info = {\"aigc_label_type\": N}: 0 on "
               "ordinary uploads (public analyses of downloaded files), a non-zero type when the platform or "
               "its creator labelled the content AI-generated (Douyin's AI-content metadata specification, 2023)"),
    *(Convention(name, "flag", "boolean AI flags written by platform and cloud media-processing tools "
                               "(is_aigc, ai_generated ...); their name says what they mean")
      for name in ("is_aigc", "isaigc", "aigc", "aigc_flag", "aigc_label", "is_ai_generated", "ai_generated",
                   "aigenerated")),
)
_BY_FIELD = {c.field: c for c in CONVENTIONS}


@dataclass(frozen=True)
class AigcReading:
    fields: dict[str, str] | None   # the standard's fields, when the JSON carries a Label
    means_ai: bool
    summary: str                    # one line for evidence
    error: str | None
    uninterpreted: bool = False     # a JSON label field under an aigc key that no known convention reads


def is_aigc_key(key: str) -> bool:
    return "aigc" in key.lower()


def is_standard_key(key: str) -> bool:
    """The standard's own field: "AIGC" as a container key, or TC260:AIGC in XMP."""
    return key.rsplit(":", 1)[-1].lower() == "aigc"


def read_aigc(key: str, value: str) -> AigcReading:
    """Interpret one aigc-keyed value; never raises."""
    if not is_standard_key(key) and value.lstrip()[:1] not in ("{", "[", '"'):
        known = _convention_reading(key, value)
        if known is None:
            return AigcReading(None, False, _clip(value), None)
        means_ai, why = known
        return AigcReading(None, means_ai, f"{_clip(value)} ({why})", None)
    try:
        data = json.loads(value)
        if isinstance(data, str):           # double-encoded: a JSON string holding the JSON
            data = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return AigcReading(None, False, _clip(value), f"{key} field is not valid JSON: {exc}")
    if _deeper_than(data, MAX_JSON_DEPTH):
        return AigcReading(None, False, _clip(value), f"{key} field nests JSON more than {MAX_JSON_DEPTH} "
                           "levels deep; not read", uninterpreted=True)
    if not isinstance(data, dict):
        return AigcReading(None, False, _clip(value),
                           f"{key} field is JSON but not an object: {type(data).__name__}")
    fields = _standard_fields(data)
    if fields is not None:
        return _from_fields(key, fields)
    if is_standard_key(key):
        return AigcReading(None, False, _clip(value), f"{key} field has no Label", uninterpreted=True)
    found = _platform_field(data)
    if found is not None:
        name, raw, means_ai, why = found
        return AigcReading(None, means_ai, f"{name}={raw} ({why})", None)
    return AigcReading(None, False, _clip(value), None, uninterpreted=True)


def _deeper_than(data: object, limit: int) -> bool:
    """Whether lists and objects nest past `limit`, measured without recursion."""
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _standard_fields(data: dict) -> dict[str, str] | None:
    """The standard's fields, at the top level or one object down (a platform's wrapper)."""
    for candidate in [data, *[v for v in data.values() if isinstance(v, dict)]]:
        lowered = {str(k).lower(): v for k, v in candidate.items()}
        if "label" in lowered:
            return {name: _scalar(lowered[name.lower()]) for name in GB_FIELDS if name.lower() in lowered}
    return None


def _from_fields(key: str, fields: dict[str, str]) -> AigcReading:
    label = fields["Label"]
    meaning = LABEL_MEANINGS.get(label)
    producer = fields.get("ContentProducer", "")
    summary = f"Label={label} ({meaning or 'unknown value'})"
    summary += f", ContentProducer={producer}" if producer else ""
    error = None if meaning else f"{key} Label {label!r} is not one of 1, 2, 3"
    return AigcReading(fields, meaning is not None, summary, error)


def _platform_field(data: dict) -> tuple[str, str, bool, str] | None:
    """(field, value, means AI, why) of the first known convention's field, at the top level or one
    object down; None when no field of a known convention holds a value it can read."""
    for candidate in [data, *[v for v in data.values() if isinstance(v, dict)]]:
        for k, v in candidate.items():
            reading = _convention_reading(str(k), _scalar(v))
            if reading is not None:
                return str(k), _scalar(v), *reading
    return None


def _convention_reading(name: str, raw: str) -> tuple[bool, str] | None:
    """(means AI, why) for a value of a known convention's field; None when the name or value is not one."""
    convention = _BY_FIELD.get(name.lower())
    value = raw.strip().lower()
    if convention is None:
        return None
    if convention.reads == "label_type":
        if not value.lstrip("-").isdigit():
            return None
        return (int(value) != 0,
                "platform AI label type" + (" 0: not labelled as AI" if int(value) == 0 else ": labelled as AI"))
    if value in _TRUTHY:
        return True, "platform AI flag"
    if value in _FALSY:
        return False, "platform AI flag: not AI"
    return None


def _scalar(value: object) -> str:
    """JSON scalar as the standard's string form: 1 -> "1", true -> "true"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _clip(value: str, n: int = 200) -> str:
    return value if len(value) <= n else value[:n] + "…"
