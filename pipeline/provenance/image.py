"""Bounded walkers for still-image metadata: JPEG segments, PNG chunks, WebP RIFF chunks.

Only the places labels live are decoded (XMP, text chunks, comments); pixel data is skipped by
seeking, and no chunk larger than `limit` is loaded. C2PA stores are located, not parsed: their
validation belongs to c2pa-python.
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from pipeline.provenance.raw import MAX_ITEMS, RawMetadata, Tag, read_exact, text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP_KEY = "XML:com.adobe.xmp"
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # markers without a length field


def image_kind(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def read_image(kind: str, f: BinaryIO, file_size: int, limit: int) -> RawMetadata:
    reader = {"jpeg": _jpeg, "png": _png, "webp": _webp}[kind]
    out = RawMetadata()
    reader(f, file_size, limit, out)
    return out


def _jpeg(f: BinaryIO, file_size: int, limit: int, out: RawMetadata) -> None:
    """Walk marker segments up to the first scan; APP1 XMP, APP11 JUMBF (C2PA) and COM matter."""
    pos, c2pa_bytes = 2, 0
    for _ in range(MAX_ITEMS):
        head = read_exact(f, pos, 4)
        if len(head) < 2 or head[0] != 0xFF:
            out.errors.append(f"jpeg: no segment marker at offset {pos}; the rest was not read")
            break
        marker = head[1]
        if marker == 0xFF:                 # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA) or len(head) < 4:   # end of image, start of scan: no more metadata
            break
        length = struct.unpack(">H", head[2:4])[0]
        if length < 2 or pos + 2 + length > file_size:
            out.errors.append(f"jpeg: segment 0x{marker:02X} at offset {pos} declares {length} bytes, "
                              "past the end of the file")
            break
        data = read_exact(f, pos + 4, length - 2)
        if marker == 0xE1 and data.startswith(_JPEG_XMP):
            out.xmp.append((f"jpeg APP1 at offset {pos}", data[len(_JPEG_XMP):]))
        elif marker == 0xEB and b"c2pa" in data[:64]:
            c2pa_bytes += len(data)
        elif marker == 0xFE:
            out.tags.append(Tag("jpeg COM", "comment", text(data)))
        pos += 2 + length
    else:
        out.errors.append(f"jpeg: more than {MAX_ITEMS} segments; the rest was not read")
    if c2pa_bytes:
        out.c2pa.append(("jpeg APP11 (JUMBF)", c2pa_bytes))


def _png(f: BinaryIO, file_size: int, limit: int, out: RawMetadata) -> None:
    pos = len(PNG_SIGNATURE)
    for _ in range(MAX_ITEMS):
        head = read_exact(f, pos, 8)
        if len(head) < 8:
            out.errors.append(f"png: file ends at offset {pos} without an IEND chunk")
            return
        length, raw_type = struct.unpack(">I4s", head)
        ctype = raw_type.decode("latin-1")
        if pos + 12 + length > file_size:
            out.errors.append(f"png: chunk '{ctype}' at offset {pos} declares {length} bytes, past the "
                              "end of the file")
            return
        if ctype == "IEND":
            return
        if ctype == "caBX":
            out.c2pa.append((f"png caBX at offset {pos}", length))
        elif ctype in ("tEXt", "zTXt", "iTXt"):
            if length > limit:
                out.errors.append(f"png: {ctype} chunk at offset {pos} holds {length} bytes, over the "
                                  f"{limit}-byte limit; not read")
            else:
                _png_text(ctype, read_exact(f, pos + 8, length), f"png {ctype}", limit, out)
        pos += 12 + length
    out.errors.append(f"png: more than {MAX_ITEMS} chunks; the rest was not read")


def _png_text(ctype: str, data: bytes, where: str, limit: int, out: RawMetadata) -> None:
    key_raw, sep, rest = data.partition(b"\x00")
    if not sep:
        out.errors.append(f"{where}: chunk has no keyword terminator")
        return
    key = key_raw.decode("latin-1")
    try:
        if ctype == "tEXt":
            value = rest.decode("latin-1")
        elif ctype == "zTXt":
            value = _inflate(rest[1:], limit).decode("latin-1")
        else:
            flag, rest = rest[:1], rest[2:]
            _lang, _, rest = rest.partition(b"\x00")
            _translated, _, rest = rest.partition(b"\x00")
            raw = _inflate(rest, limit) if flag == b"\x01" else rest
            if key == _PNG_XMP_KEY:
                out.xmp.append((f"{where} {key}", raw))
                return
            value = text(raw)
    except (zlib.error, ValueError) as exc:
        out.errors.append(f"{where} '{key}': compressed text could not be read ({exc})")
        return
    out.tags.append(Tag(where, key, value))


def _inflate(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a small chunk must not expand into gigabytes."""
    d = zlib.decompressobj()
    result = d.decompress(data, limit)
    if d.unconsumed_tail:
        raise ValueError(f"expands past the {limit}-byte limit")
    return result


def _webp(f: BinaryIO, file_size: int, limit: int, out: RawMetadata) -> None:
    pos = 12
    for _ in range(MAX_ITEMS):
        head = read_exact(f, pos, 8)
        if len(head) < 8:
            return
        raw_type, length = struct.unpack("<4sI", head)
        ctype = raw_type.decode("latin-1")
        if pos + 8 + length > file_size:
            out.errors.append(f"webp: chunk '{ctype}' at offset {pos} declares {length} bytes, past "
                              "the end of the file")
            return
        if ctype == "XMP ":
            if length > limit:
                out.errors.append(f"webp: XMP chunk holds {length} bytes, over the {limit}-byte limit; "
                                  "not read")
            else:
                out.xmp.append((f"webp XMP chunk at offset {pos}", read_exact(f, pos + 8, length)))
        elif ctype == "C2PA":
            out.c2pa.append((f"webp C2PA chunk at offset {pos}", length))
        pos += 8 + length + (length & 1)
    out.errors.append(f"webp: more than {MAX_ITEMS} chunks; the rest was not read")
