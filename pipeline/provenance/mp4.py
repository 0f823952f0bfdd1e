"""Bounded ISO BMFF (MP4/MOV) box walker that finds where provenance lives.

Box headers are read by seeking, so a multi-GB mdat costs nothing, and no box larger than
`limit` is ever loaded: top-level uuid boxes (XMP, C2PA), moov[/trak]/udta/meta/ilst (iTunes
atoms and the mdta keys that `ffmpeg -movflags use_metadata_tags` writes, where GB 45438's AIGC
key lives), udta/XMP_ and QuickTime ©-string atoms. FFmpeg reads most of these too; reading them
ourselves makes the result independent of the demuxer and lets a corrupt box be named.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from collections.abc import Iterator
from typing import BinaryIO

from pipeline.provenance.raw import MAX_ITEMS, RawMetadata, Tag, read_exact, text

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
C2PA_UUID = bytes.fromhex("D8FEC3D61B0E483C92975828877EC481")
_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp"}
_CHILDREN = {"": {"moov"}, "moov": {"trak", "udta", "meta"}, "trak": {"udta", "meta"}, "udta": {"meta"}}
_ITUNES_NAMES = {
    "©too": "encoder", "©enc": "encoded_by", "©swr": "software", "©cmt": "comment",
    "©nam": "title", "desc": "description", "©des": "description", "©day": "date", "©ART": "artist",
    "©mak": "make", "©mod": "model", "©inf": "information",
}


@dataclass(frozen=True)
class Box:
    raw_type: bytes
    offset: int
    size: int
    header: int
    usertype: bytes | None = None

    @property
    def type(self) -> str:
        return self.raw_type.decode("latin-1")

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


def is_bmff(head: bytes) -> bool:
    return head[4:8] in _TOP_LEVEL


def read_mp4(f: BinaryIO, file_size: int, limit: int) -> RawMetadata:
    out = RawMetadata()
    _walk(f, 0, file_size, "", limit, out)
    return out


def _walk(f: BinaryIO, start: int, end: int, path: str, limit: int, out: RawMetadata) -> None:
    parent = path.rsplit("/", 1)[-1]
    for box in _boxes(f, start, end, path, out):
        here = f"{path}/{box.type}" if path else box.type
        if box.type == "uuid" and parent in ("", "moov", "udta"):
            _uuid(f, box, path, limit, out)
        elif box.type == "meta" and parent in _CHILDREN:
            _meta(f, box, here, limit, out)
        elif box.type in _CHILDREN.get(parent, ()):
            _walk(f, box.body, box.end, here, limit, out)
        elif parent == "udta" and box.type == "XMP_":
            data = _payload(f, box, here, limit, out)
            if data is not None:
                out.xmp.append((here, data))
        elif parent == "udta" and box.raw_type[:1] == b"\xa9":
            _quicktime_string(f, box, path, limit, out)


def _boxes(f: BinaryIO, start: int, end: int, path: str, out: RawMetadata) -> Iterator[Box]:
    """Yield the boxes between start and end; stop at the first corrupt header, saying why."""
    where = path or "top level"
    pos = start
    for _ in range(MAX_ITEMS):
        if end - pos < 8:
            return
        head = read_exact(f, pos, 8)
        if len(head) < 8:
            out.errors.append(f"{where}: box header at offset {pos} is cut off")
            return
        size, raw_type = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            ext = read_exact(f, pos + 8, 8)
            if len(ext) < 8:
                out.errors.append(f"{where}: 64-bit box size at offset {pos} is cut off")
                return
            size, header = struct.unpack(">Q", ext)[0], 16
        elif size == 0:
            size = end - pos
        name = raw_type.decode("latin-1")
        if size < header:
            out.errors.append(f"{where}: box '{name}' at offset {pos} declares {size} bytes, "
                              f"less than its own header; the rest of {where} is unreadable")
            return
        truncated = pos + size > end
        if truncated:
            out.errors.append(f"{where}: box '{name}' at offset {pos} declares {size} bytes but only "
                              f"{end - pos} remain (truncated or corrupt)")
            size = end - pos
        usertype = None
        if raw_type == b"uuid":
            usertype = read_exact(f, pos + header, 16)
            if len(usertype) < 16 or size < header + 16:
                out.errors.append(f"{where}: uuid box at offset {pos} is cut off before its uuid")
                return
            header += 16
        yield Box(raw_type, pos, size, header, usertype)
        if truncated:
            return
        pos += size
    out.errors.append(f"{where}: more than {MAX_ITEMS} boxes; the rest was not read")


def _payload(f: BinaryIO, box: Box, where: str, limit: int, out: RawMetadata) -> bytes | None:
    n = box.size - box.header
    if n > limit:
        out.errors.append(f"{where}: box at offset {box.offset} holds {n} bytes, over the "
                          f"{limit}-byte limit; not read")
        return None
    return read_exact(f, box.body, n)


def _uuid(f: BinaryIO, box: Box, path: str, limit: int, out: RawMetadata) -> None:
    where = f"{path}/uuid" if path else "uuid"
    if box.usertype == XMP_UUID:
        data = _payload(f, box, f"{where}(XMP)", limit, out)
        if data is not None:
            out.xmp.append((f"{where}(XMP) at offset {box.offset}", data))
    elif box.usertype == C2PA_UUID:
        out.c2pa.append((f"{where}(C2PA) at offset {box.offset}", box.size))


def _meta(f: BinaryIO, box: Box, where: str, limit: int, out: RawMetadata) -> None:
    """ISO meta is a FullBox (4 bytes of version/flags first); QuickTime's moov/meta is not."""
    probe = read_exact(f, box.body, 8)
    start = box.body if probe[4:8] == b"hdlr" else box.body + 4
    children = list(_boxes(f, start, box.end, where, out))
    keys: dict[int, str] = {}
    for child in children:
        if child.type == "keys":
            data = _payload(f, child, f"{where}/keys", limit, out)
            keys = _parse_keys(data, f"{where}/keys", out) if data is not None else {}
    for child in children:
        if child.type == "ilst":
            _ilst(f, child, f"{where}/ilst", keys, limit, out)


def _parse_keys(data: bytes, where: str, out: RawMetadata) -> dict[int, str]:
    """mdta key table: version/flags, count, then (size, namespace, name) entries, 1-based."""
    keys: dict[int, str] = {}
    pos = 8
    for index in range(1, MAX_ITEMS):
        if pos + 8 > len(data):
            break
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        if size < 8 or pos + size > len(data):
            out.errors.append(f"{where}: key entry {index} declares {size} bytes, past the box end")
            break
        keys[index] = text(data[pos + 8:pos + size])
        pos += size
    return keys


def _ilst(f: BinaryIO, box: Box, where: str, keys: dict[int, str], limit: int, out: RawMetadata) -> None:
    for item in _boxes(f, box.body, box.end, where, out):
        index = int.from_bytes(item.raw_type, "big")
        key = keys.get(index) or _ITUNES_NAMES.get(item.type, item.type)
        values: list[str] = []
        for child in _boxes(f, item.body, item.end, f"{where}/{key}", out):
            data = _payload(f, child, f"{where}/{key}/{child.type}", limit, out)
            if data is None:
                continue
            if child.type == "name":       # iTunes freeform '----' item: mean/name/data
                key = text(data[4:])
            elif child.type == "data":
                value = _data_value(data)
                if value is not None:
                    values.append(value)
        for value in values:
            out.tags.append(Tag(where, key, value))


def _data_value(data: bytes) -> str | None:
    """An ilst 'data' box: 4-byte type, 4-byte locale, value. Text and integers are kept."""
    if len(data) < 8:
        return None
    kind, value = int.from_bytes(data[1:4], "big"), data[8:]
    if kind in (0, 1):
        return text(value)
    if kind == 2:
        return text(value, "utf-16-be")
    if kind in (21, 22) and 0 < len(value) <= 8:
        return str(int.from_bytes(value, "big", signed=kind == 21))
    return None


def _quicktime_string(f: BinaryIO, box: Box, path: str, limit: int, out: RawMetadata) -> None:
    """QuickTime udta ©xxx atom: 16-bit length, 16-bit language, then the text."""
    data = _payload(f, box, f"{path}/{box.type}", limit, out)
    if data is None or len(data) < 4:
        return
    n = struct.unpack(">H", data[:2])[0]
    value = data[4:4 + n] if 4 + n <= len(data) else data
    out.tags.append(Tag(path, _ITUNES_NAMES.get(box.type, box.type), text(value)))
