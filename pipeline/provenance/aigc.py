"""GB 45438-2025 implicit AI labels ("AIGC" JSON) and platforms' own aigc-keyed labels.

The standard's label is a JSON object {Label, ContentProducer, ProduceID, ReservedCode1,
ContentPropagator, PropagateID, ReservedCode2}; Label "1" means AI-generated, "2" possibly,
"3" suspected. Platforms also write labels under their own keys (anything containing "aigc"),
sometimes wrapping the standard object (Tencent COS returns {"AIGC": {...}}), sometimes with
their own flag fields. Only the standard's fields or a recognised flag count as a label; any
other JSON is reported but means nothing by itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

GB_FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1",
             "ContentPropagator", "PropagateID", "ReservedCode2")
LABEL_MEANINGS = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}
# Platform flag fields whose truthy value marks content as AI-generated; a heuristic, kept short.
_PLATFORM_FLAGS = {"is_aigc", "isaigc", "aigc", "aigc_flag", "aigc_label", "aigc_label_type",
                   "is_ai_generated", "ai_generated", "aigenerated"}
_TRUTHY = {"1", "true", "yes", "y"}


@dataclass(frozen=True)
class AigcReading:
    fields: dict[str, str] | None   # the standard's fields, when the JSON carries a Label
    means_ai: bool
    summary: str                    # one line for evidence
    error: str | None


def is_aigc_key(key: str) -> bool:
    return "aigc" in key.lower()


def is_standard_key(key: str) -> bool:
    """The standard's own field: "AIGC" as a container key, or TC260:AIGC in XMP."""
    return key.rsplit(":", 1)[-1].lower() == "aigc"


def read_aigc(key: str, value: str) -> AigcReading:
    """Interpret one aigc-keyed value; never raises."""
    if not is_standard_key(key) and value.lstrip()[:1] not in ("{", "[", '"'):
        flagged = key.lower() in _PLATFORM_FLAGS and value.strip().lower() in _TRUTHY
        return AigcReading(None, flagged, _clip(value) + (" (platform AI flag)" if flagged else ""), None)
    try:
        data = json.loads(value)
        if isinstance(data, str):           # double-encoded: a JSON string holding the JSON
            data = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return AigcReading(None, False, _clip(value), f"{key} field is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return AigcReading(None, False, _clip(value),
                           f"{key} field is JSON but not an object: {type(data).__name__}")
    fields = _standard_fields(data)
    if fields is not None:
        return _from_fields(key, fields)
    if is_standard_key(key):
        return AigcReading(None, False, _clip(value), f"{key} field has no Label")
    flag = _platform_flag(data)
    if flag is not None:
        return AigcReading(None, True, f"{flag[0]}={flag[1]} (platform AI flag)", None)
    return AigcReading(None, False, _clip(value), None)


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


def _platform_flag(data: dict) -> tuple[str, str] | None:
    for candidate in [data, *[v for v in data.values() if isinstance(v, dict)]]:
        for k, v in candidate.items():
            if str(k).lower() in _PLATFORM_FLAGS and _scalar(v).lower() in _TRUTHY:
                return str(k), _scalar(v)
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
