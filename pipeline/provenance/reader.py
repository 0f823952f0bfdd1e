"""What a file declares about its own AI generation: C2PA, GB 45438 AIGC labels, IPTC, tool tags.

Readers per format collect raw metadata (pipeline.provenance_mp4, provenance_image, PyAV tags,
provenance_xmp, provenance_c2pa); this module decides what each value means, the same way for
every format. Declared provenance is decisive when present, but a missing label proves nothing:
tools strip C2PA, TC260 and IPTC markers. Malformed metadata is reported in `errors`, never raised.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from pipeline.provenance.aigc import LABEL_MEANINGS, is_aigc_key, read_aigc
from pipeline.provenance.c2pa import is_ai_source_type, read_c2pa, source_type_code
from pipeline.provenance.generators import match_generator, tool_key
from pipeline.provenance.image import image_kind, read_image
from pipeline.provenance.mp4 import is_bmff, read_mp4
from pipeline.provenance.raw import RawMetadata, Tag
from pipeline.provenance.xmp import xmp_tags

TAG_VALUE_MAX = 1024       # characters kept per container tag in the report
EVIDENCE_VALUE_MAX = 300
_MIME = {"mp4": "video/mp4", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass
class ProvenanceEvidence:
    source: str      # "c2pa" | "aigc_label" | "xmp" | "container_tag"
    field: str       # where and which field, e.g. "moov/udta/meta/ilst:AIGC"
    value: str
    means_ai: bool


@dataclass
class Provenance:
    declares_ai: bool            # some declared evidence says AI-generated or AI-edited
    ai_label_present: bool       # a recognised AI label: C2PA AI source type, AIGC label, IPTC AI type
    c2pa: dict | None
    aigc_label: dict | None      # GB 45438 fields + meaning + found_in
    iptc_digital_source_type: str | None
    container_tags: dict[str, str] = field(default_factory=dict)
    evidence: list[ProvenanceEvidence] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    uninterpreted: list[str] = field(default_factory=list)  # AI-label fields present whose value we cannot read

    def to_dict(self) -> dict:
        return asdict(self)


def read_provenance(path: Path, max_box_bytes: int = 8 << 20) -> Provenance:
    """Read every declared-provenance signal of one file. Raises only FileNotFoundError.

    max_box_bytes bounds what is loaded from any one box, chunk or manifest: larger ones are
    reported in `errors` and skipped, so a hostile upload cannot make a scan allocate gigabytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = RawMetadata()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        kind = image_kind(head) or ("mp4" if is_bmff(head) else None)
        if kind == "mp4":
            _guarded("MP4 box reader", raw, lambda: read_mp4(f, size, max_box_bytes))
        elif kind is not None:
            _guarded(f"{kind} reader", raw, lambda: read_image(kind, f, size, max_box_bytes))
        if kind in ("mp4", None):
            raw.extend(_pyav_tags(path))
        for location, packet in raw.xmp:
            tags, errors = xmp_tags(location, packet)
            raw.tags += tags
            raw.errors += errors
        f.seek(0)
        c2pa_summary, c2pa_errors = read_c2pa(f, _MIME.get(kind or ""), raw.c2pa, max_box_bytes)
    raw.errors += c2pa_errors
    return _interpret(raw, c2pa_summary, max_box_bytes)


def _guarded(name: str, raw: RawMetadata, read) -> None:
    """The walkers are written not to raise; this keeps the no-raise contract if one still does."""
    try:
        raw.extend(read())
    except Exception as exc:  # noqa: BLE001 - any failure on hostile bytes becomes a reported error
        raw.errors.append(f"{name} failed: {type(exc).__name__}: {exc}")


def _pyav_tags(path: Path) -> RawMetadata:
    """All container and stream metadata as FFmpeg sees it, for any container it can open."""
    out = RawMetadata()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            out.tags += [Tag("container", k, v) for k, v in container.metadata.items()]
            for stream in container.streams:
                out.tags += [Tag(f"stream{stream.index}", k, v) for k, v in stream.metadata.items()]
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split())[:200]
        out.errors.append(f"FFmpeg could not read the container metadata: {message}")
    return out


def _interpret(raw: RawMetadata, c2pa_summary: dict | None, limit: int) -> Provenance:
    result = Provenance(False, False, c2pa_summary, None, None, errors=list(raw.errors))
    result.container_tags = {
        (t.key if t.location == "container" else f"{t.location}:{t.key}"): _clip(t.value, TAG_VALUE_MAX)
        for t in raw.tags if not t.location.startswith("xmp")
    }
    labels: list[dict] = []
    for tags in _grouped(raw.tags):
        if len(tags[0].value) > limit:   # FFmpeg loads any size; we interpret bounded values only
            result.errors.append(f"{tags[0].location}:{tags[0].key}: value of {len(tags[0].value)} "
                                 f"characters, over the {limit} limit; not interpreted")
            continue
        result.ai_label_present |= _read_group(tags, result, labels)
    result.aigc_label = next((lab for lab in labels if lab.get("meaning")), labels[0] if labels else None)
    if c2pa_summary is not None:
        result.ai_label_present |= _c2pa_evidence(c2pa_summary, result.evidence)
    result.declares_ai = any(e.means_ai for e in result.evidence)
    return result


def _grouped(tags: list[Tag]) -> list[list[Tag]]:
    """Tags with the same value under the same name (e.g. AIGC seen by FFmpeg and in ilst) as one."""
    groups: dict[tuple[str, str], list[Tag]] = {}
    for tag in tags:
        groups.setdefault((tag.key.rsplit(":", 1)[-1].lower(), tag.value), []).append(tag)
    return list(groups.values())


def _read_group(tags: list[Tag], result: Provenance, labels: list[dict]) -> bool:
    """Add evidence for one group of equal tags; True when it is a recognised AI label."""
    first, where = tags[0], ", ".join(f"{t.location}:{t.key}" for t in tags)
    source = "xmp" if first.location.startswith("xmp") else "container_tag"
    if is_aigc_key(first.key):
        reading = read_aigc(first.key, first.value)
        if reading.error:
            result.errors.append(f"{where}: {reading.error}")
        if reading.uninterpreted:
            result.uninterpreted.append(f"{where}: {reading.summary}")
        if reading.fields is not None:
            labels.append({**reading.fields, "meaning": LABEL_MEANINGS.get(reading.fields["Label"]),
                           "found_in": [f"{t.location}:{t.key}" for t in tags]})
        result.evidence.append(
            ProvenanceEvidence("aigc_label", where, _clip(reading.summary), reading.means_ai))
        return reading.means_ai
    if first.key.lower().endswith("digitalsourcetype"):
        means_ai = is_ai_source_type(first.value)
        result.iptc_digital_source_type = result.iptc_digital_source_type or first.value
        result.evidence.append(ProvenanceEvidence(source, where, _clip(first.value), means_ai))
        return means_ai
    if tool_key(first.key):
        generator = match_generator(first.value[:4096])
        if generator:
            result.evidence.append(ProvenanceEvidence(
                source, where, _clip(f"{first.value} (names {generator})"), True))
    return False


def _c2pa_evidence(summary: dict, evidence: list[ProvenanceEvidence]) -> bool:
    """Evidence from a C2PA summary; True when it declares an AI digital source type."""
    generator_field = summary.get("claim_generator")
    if generator_field:
        generator = match_generator(generator_field)
        named = f" (names {generator})" if generator else ""
        evidence.append(ProvenanceEvidence("c2pa", "claim_generator", _clip(generator_field + named),
                                           generator is not None))
    for action in summary.get("actions", []):
        agent = action.get("softwareAgent")
        generator = match_generator(agent) if agent else None
        if generator:
            evidence.append(ProvenanceEvidence("c2pa", f"{action['action']} softwareAgent",
                                               _clip(f"{agent} (names {generator})"), True))
    ai = False
    for dst in summary.get("digital_source_types", []):
        means_ai = is_ai_source_type(dst)
        ai |= means_ai
        evidence.append(ProvenanceEvidence(
            "c2pa", "digitalSourceType",
            f"{source_type_code(dst)} (manifest {summary.get('validation_state')})", means_ai))
    return ai


def _clip(value: str, n: int = EVIDENCE_VALUE_MAX) -> str:
    return value if len(value) <= n else value[:n] + "…"
