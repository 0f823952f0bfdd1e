"""Near-duplicate content: the same image or frame re-posted with small edits (re-encode, resize, mirror,
a text overlay, a light crop) is recognised by a perceptual hash, so a confirmed violation is caught
again on re-upload and mass-produced look-alike posts show up as clusters.

The hash is PDQ (Meta's 256-bit DCT hash for exactly this job, through the pdqhash package). PDQ alone
survives re-encoding, resizing and overlays but not crops (a 5% margin off each side moves it as far as an
unrelated picture), so the centred crops are hashed too, and the mirror of each: two pictures are as
close as the nearest pair of one whole picture and the other's variants.
The match line (`MATCH_BITS`) and what each edit does to the distance are measured on real photos and
video frames in benchmarks/near_duplicates.py (docs/posts.md).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pdqhash

BITS = 256
MATCH_BITS = 70       # Hamming distance at or below which two pictures are the same content (measured)
MIN_QUALITY = 50      # PDQ's own quality: flatter pictures (a blank frame, a solid colour) hash unreliably
CROPS = (1.0, 0.9, 0.8)  # centred crops hashed too (share of width and height kept): PDQ alone misses crops


@dataclass(frozen=True)
class Fingerprint:
    """PDQ hashes (hex) of a picture and of its centred crops (`CROPS`), each as it is and mirrored,
    in that order; `quality` is PDQ's 0-100 for the whole picture."""

    variants: tuple[str, ...]
    quality: int

    @property
    def usable(self) -> bool:
        return self.quality >= MIN_QUALITY


def _crop(image: np.ndarray, share: float) -> np.ndarray:
    h, w = image.shape[:2]
    dh, dw = int(h * (1 - share) / 2), int(w * (1 - share) / 2)
    return np.ascontiguousarray(image[dh:h - dh, dw:w - dw])


def fingerprint(image_bgr: np.ndarray) -> Fingerprint:
    rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    variants, quality = [], 0
    for share in CROPS:
        part = _crop(rgb, share)
        bits, q = pdqhash.compute(part)
        mirrored, _ = pdqhash.compute(np.ascontiguousarray(part[:, ::-1]))
        variants += [_hex(bits), _hex(mirrored)]
        quality = quality or int(q)
    return Fingerprint(tuple(variants), quality)


def _hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _bits(fingerprint: Fingerprint) -> np.ndarray:
    """(variants, 256) bits."""
    return np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(v), dtype=np.uint8)) for v in fingerprint.variants])


def distance(a: Fingerprint, b: Fingerprint) -> int:
    """Bits that differ between the two pictures at their closest: either one whole against the other
    or one of its centred crops, mirrored or not (so a re-post cropped by up to CROPS' margins matches)."""
    x, y = _bits(a), _bits(b)
    return int(min(np.count_nonzero(x[0] != y, axis=1).min(), np.count_nonzero(y[0] != x, axis=1).min()))


@dataclass(frozen=True)
class Match:
    key: str          # the caller's name for the known picture (e.g. "<scan id>/<item>")
    distance: int


def nearest(query: Fingerprint, known: Iterable[tuple[str, Fingerprint]], limit: int = MATCH_BITS) -> list[Match]:
    """The known pictures within `limit` bits of `query`, closest first (exhaustive: one XOR and popcount
    per known picture, fine for a platform's recent history; an index is the next step at scale)."""
    if not query.usable:
        return []
    rows = list(known)
    if not rows:
        return []
    matrix = np.stack([_bits(f) for _, f in rows])                                  # (n, variants, 256)
    mine = _bits(query)                                                             # (variants, 256)
    differ = np.minimum(np.count_nonzero(matrix != mine[0], axis=2).min(axis=1),    # the query whole vs theirs
                        np.count_nonzero(matrix[:, :1, :] != mine[None], axis=2).min(axis=1))  # theirs whole vs ours
    hits = [Match(key, int(d)) for (key, _), d in zip(rows, differ) if d <= limit]
    return sorted(hits, key=lambda m: (m.distance, m.key))


def clusters(items: Sequence[tuple[str, Fingerprint]], limit: int = MATCH_BITS) -> list[list[str]]:
    """Groups of pictures linked by near-duplicate pairs (connected components), largest first; a
    picture alike to none is no cluster."""
    usable = [(k, f) for k, f in items if f.usable]
    parent = list(range(len(usable)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(usable)):
        for j in range(i + 1, len(usable)):
            if distance(usable[i][1], usable[j][1]) <= limit:
                parent[root(i)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, (key, _) in enumerate(usable):
        groups.setdefault(root(i), []).append(key)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g))
