"""Metadata as found in a file, before any interpretation.

The format readers (MP4 boxes, image segments, PyAV tags) only collect; deciding what a value
means happens in one place (`pipeline.provenance`), so every format gets the same rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

MAX_ITEMS = 10_000  # boxes/chunks/segments walked per container: a file of tiny boxes cannot stall us


@dataclass(frozen=True)
class Tag:
    """One key/value metadata entry and where it sits (e.g. "moov/udta/meta/ilst", "stream0")."""

    location: str
    key: str
    value: str


@dataclass
class RawMetadata:
    tags: list[Tag] = field(default_factory=list)
    xmp: list[tuple[str, bytes]] = field(default_factory=list)   # (location, packet)
    c2pa: list[tuple[str, int]] = field(default_factory=list)    # (location, bytes) of C2PA stores seen
    errors: list[str] = field(default_factory=list)

    def extend(self, other: RawMetadata) -> None:
        self.tags += other.tags
        self.xmp += other.xmp
        self.c2pa += other.c2pa
        self.errors += other.errors


def read_exact(f: BinaryIO, offset: int, n: int) -> bytes:
    """Read n bytes at offset; fewer come back only at end of file."""
    f.seek(offset)
    return f.read(n)


def text(data: bytes, encoding: str = "utf-8") -> str:
    """Decode metadata text leniently: a bad byte must not hide the rest of the value."""
    return data.decode(encoding, errors="replace").rstrip("\x00")
