"""The invisible `dwtDct` watermark that open image generators embed (imwatermark's EmbedMaxDct).

Stable Diffusion's reference scripts and diffusers' SDXL pipelines stamp every output with it, so a
video made from such frames may still carry it: decisive evidence when found, nothing when absent
(it is public, fragile and trivially removed).

The scheme as imwatermark 0.2.0 implements it, reproduced bit for bit:
- YUV by ``cv2.cvtColor(BGR2YUV)`` on the image's own dtype; only the U plane carries the mark
  (its scales are ``[0, 36, 36]`` but it loops over channels 0 and 1 only), cropped to a multiple of 4;
- one level of Haar DWT; the approximation band is cut into 4x4 blocks, row-major;
- despite the name there is no DCT: in each block the non-[0,0] coefficient of largest magnitude is
  quantised so that ``|c| mod 36`` sits at 9 (bit 0) or 27 (bit 1); block k carries bit k mod n;
- decoding reads ``|c| mod 36 > 18`` per block and takes a majority per bit.
The embedder's inverse DWT swaps the H and V detail bands; reproduced so fixtures look like real
generator output.

Generators differ in how they call it, so detection tries each way a known payload is embedded:
uint8 YUV (SD v1/v2 reference scripts, imwatermark CLI) or float32 YUV (diffusers SDXL hands float
pixels, whose U plane is offset by 0.5 instead of 128), and the channel order as given or swapped
(early diffusers passed RGB where BGR was expected).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import pywt

SCALE = 36.0
BLOCK = 4
MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images; so do we, too few blocks per bit

# Fraction of payload bits that must agree. Measured (tests/pipeline/test_watermark.py, report):
# unmarked real frames peak below 0.7, marked frames after H.264 at CRF <= 23 stay above 0.9.
MATCH_THRESHOLD = 0.85

SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110  # diffusers / generative-models


def bytes_to_bits(payload: bytes) -> np.ndarray:
    """imwatermark's 'bytes' layout: np.unpackbits, most significant bit first."""
    return np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(bool)


def int_to_bits(value: int) -> np.ndarray:
    """The 'bits' layout diffusers uses for SDXL: ``bin(value)[2:]``, leading zeros dropped."""
    return np.array([c == "1" for c in bin(value)[2:]], dtype=bool)


@dataclass(frozen=True)
class Payload:
    name: str
    bits: np.ndarray


KNOWN_PAYLOADS: tuple[Payload, ...] = (
    Payload("StableDiffusionV1", bytes_to_bits(b"StableDiffusionV1")),  # CompVis scripts/txt2img.py
    Payload("SDV2", bytes_to_bits(b"SDV2")),                            # Stability-AI/stablediffusion
    Payload("SDXL", int_to_bits(SDXL_MESSAGE)),                          # diffusers, generative-models
)


@dataclass(frozen=True)
class DecodeVariant:
    """How the embedder was fed: pixel dtype (shifts the U plane) and channel order."""
    float_yuv: bool = False
    swap_rb: bool = False


VARIANTS: tuple[DecodeVariant, ...] = (
    DecodeVariant(False, False), DecodeVariant(True, False),
    DecodeVariant(False, True), DecodeVariant(True, True),
)


@dataclass
class WatermarkHit:
    scheme: str
    payload_name: str
    bit_accuracy: float   # agreement of the bits pooled over all checked frames
    frames_checked: int
    frames_matched: int   # frames that match on their own


def _u_band(bgr: np.ndarray, variant: DecodeVariant) -> np.ndarray:
    """Haar approximation band of the U plane, exactly as imwatermark computes it."""
    image = bgr[..., ::-1] if variant.swap_rb else bgr
    if variant.float_yuv:
        image = image.astype(np.float32)
    rows, cols = image.shape[0] // 4 * 4, image.shape[1] // 4 * 4
    yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV)
    approx, _ = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    return approx


def _blocks(approx: np.ndarray) -> np.ndarray:
    """(n_blocks, 16) view of the 4x4 blocks in row-major order; edge rows/cols left out."""
    nr, nc = approx.shape[0] // BLOCK, approx.shape[1] // BLOCK
    grid = approx[: nr * BLOCK, : nc * BLOCK].reshape(nr, BLOCK, nc, BLOCK)
    return grid.transpose(0, 2, 1, 3).reshape(nr * nc, BLOCK * BLOCK)


def _peak_index(blocks: np.ndarray) -> np.ndarray:
    """Index of the largest-magnitude coefficient other than [0,0] (first on ties, as np.argmax)."""
    return np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1


def _block_bits(bgr: np.ndarray, variant: DecodeVariant) -> np.ndarray:
    """One hard bit per block, in embedding order."""
    blocks = _blocks(_u_band(bgr, variant))
    peak = np.abs(blocks[np.arange(len(blocks)), _peak_index(blocks)])
    return (peak % SCALE) > 0.5 * SCALE


def _vote(block_bits: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per payload bit: how many blocks read 1, and how many blocks carry it."""
    slot = np.arange(len(block_bits)) % n_bits
    ones = np.bincount(slot, weights=block_bits, minlength=n_bits)
    return ones, np.bincount(slot, minlength=n_bits).astype(np.float64)


def _majority(ones: np.ndarray, total: np.ndarray) -> np.ndarray:
    # imwatermark: mean * 255 > 127, kept in integers.
    return ones * 255 > total * 127


def _check_size(bgr: np.ndarray) -> None:
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got shape {bgr.shape}")
    if bgr.shape[0] * bgr.shape[1] < MIN_PIXELS:
        raise ValueError(f"image {bgr.shape[1]}x{bgr.shape[0]} is below 256x256 pixels")


def decode_dwtdct_bits(bgr: np.ndarray, n_bits: int, variant: DecodeVariant = DecodeVariant()) -> np.ndarray:
    """Raw bits as imwatermark's ``WatermarkDecoder('bits', n_bits).decode(bgr, 'dwtDct')`` reads them."""
    _check_size(bgr)
    return _majority(*_vote(_block_bits(bgr, variant), n_bits))


def embed_dwtdct(bgr: np.ndarray, bits: Sequence[int] | np.ndarray) -> np.ndarray:
    """imwatermark's ``WatermarkEncoder.encode(bgr, 'dwtDct')``, same output dtype and values."""
    _check_size(bgr)
    bits = np.asarray(bits, dtype=np.float64) % 2
    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    approx, (h, v, d) = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    blocks = _blocks(approx)
    index = np.arange(len(blocks))
    peak = _peak_index(blocks)
    value = blocks[index, peak]
    wanted = bits[index % len(bits)]
    blocks[index, peak] = np.where(value >= 0, 1.0, -1.0) * (np.abs(value) // SCALE + 0.25 + 0.5 * wanted) * SCALE
    nr, nc = approx.shape[0] // BLOCK, approx.shape[1] // BLOCK
    approx[: nr * BLOCK, : nc * BLOCK] = blocks.reshape(nr, nc, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(
        nr * BLOCK, nc * BLOCK)
    # Same assignment as imwatermark: bands swapped, float cast back into the plane's own dtype.
    yuv[:rows, :cols, 1] = pywt.idwt2((approx, (v, h, d)), "haar")
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)


def detect_watermark(frames: Sequence[np.ndarray], payloads: Sequence[Payload] = KNOWN_PAYLOADS,
                     threshold: float = MATCH_THRESHOLD) -> WatermarkHit | None:
    """Best known payload across frames, or None.

    Block votes are pooled over frames of the same size (a static mark adds up, noise does not);
    a payload is reported when the pooled bits or at least one frame on its own reach ``threshold``.
    Frames under 256x256 are skipped.
    """
    usable = [f for f in frames if f.ndim == 3 and f.shape[0] * f.shape[1] >= MIN_PIXELS]
    if not usable:
        return None
    best: WatermarkHit | None = None
    for variant in VARIANTS:
        per_frame = [(f.shape[:2], _block_bits(f, variant)) for f in usable]
        for payload in payloads:
            n = len(payload.bits)
            pooled: dict[tuple[int, int], list[np.ndarray]] = {}
            matched = 0
            for shape, block_bits in per_frame:
                ones, total = _vote(block_bits, n)
                if np.mean(_majority(ones, total) == payload.bits) >= threshold:
                    matched += 1
                acc = pooled.setdefault(shape, [np.zeros(n), np.zeros(n)])
                acc[0] += ones
                acc[1] += total
            accuracy = max(float(np.mean(_majority(o, t) == payload.bits)) for o, t in pooled.values())
            if accuracy < threshold and matched == 0:
                continue
            hit = WatermarkHit("dwtDct", payload.name, accuracy, len(usable), matched)
            if best is None or (hit.bit_accuracy, hit.frames_matched) > (best.bit_accuracy, best.frames_matched):
                best = hit
    return best
