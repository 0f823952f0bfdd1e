"""The media readers fuzzed: every input ends in a result or the documented error, never another
exception, never a hang, never an allocation the input asked for.

Two kinds of input:
- structure-aware generators (Hypothesis) for MP4 box trees (sizes that lie, 64-bit sizes, boxes cut
  off, deep nesting, huge counts), PNG chunks (bad CRCs, lying lengths, tEXt/zTXt/iTXt/caBX), JPEG
  APP1/APP11 segments (XMP, JUMBF/C2PA), WebP RIFF chunks, XMP packets and AIGC JSON values;
- mutations (bit flips, overwrites with boundary values, truncation, deletion, splices) of real files:
  the package-shipped photos, two real footage clips (samples/footage.py) and the provenance fixtures
  (C2PA-signed MP4/JPEG/PNG, AIGC and XMP labels), aimed at box, chunk and segment headers.

Contracts checked: `read_provenance` returns a JSON-serialisable Provenance (its walkers' safety net
never fires) or raises FileNotFoundError; `probe` and `sample_frames` end in frames or
VideoInputError; `xmp_tags` and `read_aigc` never raise. Each input runs under a CPU-time limit (SIGPROF,
plus a faulthandler backstop that kills the run if native code hangs past it), a bound on the Python
memory it allocates (tracemalloc) and on the address space native code may add (RLIMIT_AS).

The default run is deterministic (derandomize=True) and small. A longer, randomised run:
    LIKENESS_FUZZ_SCALE=50 python -m pytest -q tests/pipeline/test_reader_fuzz.py -p no:cacheprovider
multiplies every max_examples by 50 and draws fresh inputs (Hypothesis prints the seed of a failure;
rerun it with --hypothesis-seed=N). A failure found this way gets fixed in the reader and pinned here
as an @example.
"""
from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.config import ScanConfig
from pipeline.provenance.aigc import read_aigc
from pipeline.provenance.image import PNG_SIGNATURE
from pipeline.provenance.mp4 import C2PA_UUID, XMP_UUID
from pipeline.provenance.reader import Provenance, read_provenance
from pipeline.provenance.xmp import xmp_tags
from pipeline.report import build_report
from pipeline.video import DecodeStats, VideoInputError, probe, sample_frames
from samples import footage
from samples.photos import PACKAGE_PHOTOS, package_photo
from tests import provenance_fixtures as fx

LIMIT = 256 << 10              # max_box_bytes for every fuzzed read: large enough for the signed stores
PYTHON_MEMORY_BOUND = 32 << 20  # peak Python allocation per input (tracemalloc)
NATIVE_HEADROOM = 1 << 30       # address space a read may add (RLIMIT_AS above the current size); not
                                # set around decoding, whose threads each reserve a 64 MiB malloc arena
SECONDS = 10.0                  # CPU seconds per input: readers take milliseconds, the worst (a file of
                                # tiny boxes, to c2pa-rs's budget) about 2 s, decoding a clip well under 1 s
_SCALE = float(os.environ.get("LIKENESS_FUZZ_SCALE", "1"))


def fuzz(max_examples: int) -> settings:
    return settings(max_examples=max(1, int(max_examples * _SCALE)), derandomize=_SCALE <= 1, database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


class InputHang(BaseException):
    """An input ran past its time limit (a BaseException: no reader's `except Exception` hides it)."""


@contextmanager
def bounded(seconds: float = SECONDS, python_bytes: int | None = PYTHON_MEMORY_BOUND,
            address_space: int | None = NATIVE_HEADROOM) -> Iterator[None]:
    """Time, Python-memory and address-space limits around one input. A hang is also reported when
    the InputHang was raised inside a callback that swallowed it (c2pa-python's stream callbacks)."""
    fired: list[bool] = []

    def hang(signum, frame):
        fired.append(True)
        raise InputHang(f"input still running after {seconds} s of CPU")

    previous = signal.signal(signal.SIGPROF, hang)
    signal.setitimer(signal.ITIMER_PROF, seconds)  # CPU time: a loaded machine's waiting is no hang
    faulthandler.dump_traceback_later(seconds * 12, exit=True)   # wall clock: code that never returns
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if address_space is not None:
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (in_use + address_space, hard))
    if python_bytes is not None:
        tracemalloc.start()
    try:
        yield
        assert not fired, f"input still running after {seconds} s of CPU (the reader swallowed the interruption)"
        if python_bytes is not None:
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < python_bytes, f"the input made Python allocate {peak} bytes"
    finally:
        if python_bytes is not None:
            tracemalloc.stop()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def check_provenance(path: Path) -> Provenance:
    """read_provenance's contract on one file: a Provenance, never an exception, the walkers' own
    catch-all never needed."""
    with bounded():
        result = read_provenance(path, max_box_bytes=LIMIT)
    assert isinstance(result, Provenance)
    json.dumps(result.to_dict())
    assert not [e for e in result.errors if " reader failed: " in e], result.errors
    return result


def check_video(path: Path) -> None:
    """probe and sample_frames end in frames or VideoInputError."""
    config = ScanConfig().sampling
    with bounded(python_bytes=None, address_space=None):
        try:
            info = probe(path, config)
        except VideoInputError as exc:
            assert str(exc).startswith(str(path)), exc
            return
        stats = DecodeStats()
        for frame in sample_frames(info, config, stats):
            assert frame.image.ndim == 3 and frame.image.shape[2] == 3


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bytes, str], Path]:
    folder = tmp_path_factory.mktemp("fuzz")

    def write(data: bytes, suffix: str = ".bin") -> Path:
        path = folder / f"upload{suffix}"
        path.write_bytes(data)
        return path
    return write


# ---------------------------------------------------------------- building blocks

_LIES = st.one_of(st.integers(0, 2**64 - 1),
                  st.sampled_from([0, 1, 7, 8, 9, 15, 16, 17, 2**31 - 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]))
_TEXT = st.text(max_size=40)


@st.composite
def aigc_values(draw: st.DrawFn) -> str:
    """What an aigc-keyed field may hold: GB 45438 labels (right and wrong), platform flags, JSON of
    any shape, double-encoded JSON, nesting deep enough to reach the recursion limit, plain text."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), _TEXT,
                        st.sampled_from(["1", "2", "3", "0", "7", "true", "no", ""]))
    keys = st.one_of(st.sampled_from(["Label", "label", "ContentProducer", "ProduceID", "AIGC", "aigc_label_type",
                                      "is_aigc", "ai_generated"]), _TEXT)
    value = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                         st.dictionaries(keys, kids, max_size=5)), max_leaves=12)
    kind = draw(st.sampled_from(["json", "label", "deep", "double", "text"]))
    if kind == "label":
        return json.dumps({**fx.GB_LABEL, "Label": draw(scalars)})
    if kind == "deep":
        depth = draw(st.integers(1, 1200))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"Label": ', "}"), ('{"x": ', "}")]))
        return '{"Label": ' + opener * depth + "1" + closer * depth + "}"
    if kind == "double":
        return json.dumps(json.dumps(draw(value)))
    if kind == "text":
        return draw(_TEXT)
    return json.dumps(draw(value))


_DTD = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'


@st.composite
def xmp_packets(draw: st.DrawFn) -> bytes:
    """XMP as tools write it (attributes, elements, rdf:resource), in other encodings, with DTDs,
    nested deep, cut off, or plain garbage."""
    kind = draw(st.sampled_from(["fixture", "deep", "encoded", "dtd", "cut", "garbage"]))
    packet = fx.xmp_packet(aigc=draw(st.none() | st.just(fx.GB_LABEL)),
                           digital_source_type=draw(st.none() | st.sampled_from(["trainedAlgorithmicMedia", "x"])),
                           creator_tool=draw(st.none() | _TEXT), as_elements=draw(st.booleans()))
    if kind == "deep":
        depth = draw(st.integers(1, 20_000))
        return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">' + b"<a>" * depth
                + b"<xmp:CreatorTool>Sora</xmp:CreatorTool>" + b"</a>" * depth + b"</x:xmpmeta>")
    if kind == "encoded":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "x-no-such-encoding", "utf-32"]))
        body = packet.decode().replace("\ufeff", "")
        declared = f'<?xml version="1.0" encoding="{encoding}"?>'
        try:
            return (declared + body).encode(encoding, errors="replace")
        except LookupError:
            return declared.encode() + body.encode()
    if kind == "dtd":
        return _DTD + packet.split(b"?>", 1)[1].replace(b"<rdf:RDF", b"&b;<rdf:RDF", 1)
    if kind == "cut":
        return packet[:draw(st.integers(0, len(packet)))]
    if kind == "garbage":
        return draw(st.binary(max_size=200))
    return packet


def _jumbf(draw: st.DrawFn) -> bytes:
    """A JUMBF superbox that names itself c2pa, with random content: what APP11/caBX/C2PA carry."""
    label = b"c2pa\x00"
    jumd = b"c2pa" + bytes.fromhex("00110010800000aa00389b71") + b"\x03" + label
    content = draw(st.binary(max_size=120))
    inner = struct.pack(">I4s", 8 + len(jumd), b"jumd") + jumd + content
    size = draw(st.one_of(st.just(8 + len(inner)), _LIES.map(lambda n: n & 0xFFFFFFFF)))
    return struct.pack(">I4s", size, b"jumb") + inner


# ---------------------------------------------------------------- MP4 box trees


def _box(kind: bytes, payload: bytes, size_mode: str, lie: int) -> bytes:
    if size_mode == "lie32":
        return struct.pack(">I4s", lie & 0xFFFFFFFF, kind) + payload
    if size_mode == "exact64":
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    if size_mode == "lie64":
        return struct.pack(">I4sQ", 1, kind, lie) + payload
    if size_mode == "to_end":
        return struct.pack(">I4s", 0, kind) + payload
    full = struct.pack(">I4s", 8 + len(payload), kind) + payload
    return full[:lie % (len(full) + 1)] if size_mode == "cut" else full


_SIZE_MODES = st.sampled_from(["exact"] * 6 + ["lie32", "exact64", "lie64", "to_end", "cut"])


@st.composite
def _leaf_box(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([b"data", b"keys", b"hdlr", b"XMP_", b"\xa9too", b"\xa9cmt", b"name", b"mean",
                                 b"free", b"mdat", b"uuid", b"\x00\x00\x00\x01"]) | st.binary(min_size=4, max_size=4))
    if kind == b"uuid":
        payload = draw(st.sampled_from([XMP_UUID, C2PA_UUID])) + draw(st.one_of(xmp_packets(), st.binary(max_size=64)))
        if payload.startswith(C2PA_UUID):
            payload = C2PA_UUID + b"\x00\x00\x00\x00manifest\x00" + bytes(8) + _jumbf(draw)
    elif kind == b"data":
        payload = struct.pack(">I", draw(st.sampled_from([0, 1, 2, 21, 22]) | st.integers(0, 2**32 - 1))) + bytes(4) \
            + draw(st.one_of(aigc_values().map(str.encode), st.binary(max_size=16)))
    elif kind == b"keys":
        names = draw(st.lists(st.sampled_from([b"AIGC", b"aigc_info", b"com.apple.quicktime.software"]), max_size=4))
        entries = b"".join(struct.pack(">I", draw(st.sampled_from([8 + len(n)]) | _LIES) & 0xFFFFFFFF) + b"mdta" + n
                           for n in names)
        payload = struct.pack(">II", 0, draw(st.sampled_from([len(names), 2**32 - 1]))) + entries
    elif kind in (b"\xa9too", b"\xa9cmt"):
        value = draw(_TEXT).encode()
        payload = struct.pack(">HH", draw(st.sampled_from([len(value), 0xFFFF])), 0) + value
    elif kind == b"XMP_":
        payload = draw(xmp_packets())
    else:
        payload = draw(st.binary(max_size=48))
    return _box(kind, payload, draw(_SIZE_MODES), draw(_LIES))


def _wrap(kind: bytes, children: list[bytes], version_flags: bytes, size_mode: str, lie: int) -> bytes:
    payload = (version_flags if kind == b"meta" else b"") + b"".join(children)
    return _box(kind, payload, size_mode, lie)


def _container(kids: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    kinds = st.sampled_from([b"moov", b"trak", b"udta", b"meta", b"ilst", b"----", b"\x00\x00\x00\x01", b"\xa9too"])
    return st.builds(_wrap, kinds, st.lists(kids, max_size=4), st.sampled_from([b"", bytes(4)]), _SIZE_MODES, _LIES)


_BOX_TREES = st.recursive(_leaf_box(), _container, max_leaves=10)
_FTYP = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00"


@st.composite
def mp4_files(draw: st.DrawFn) -> bytes:
    body = b"".join(draw(st.lists(_BOX_TREES, min_size=1, max_size=4)))
    shape = draw(st.sampled_from(["plain"] * 6 + ["nested", "cut"]))
    if shape == "nested":               # deep nesting along the path the walker follows
        for kind in draw(st.lists(st.sampled_from([b"moov", b"trak", b"udta", b"meta"]), max_size=400)):
            body = struct.pack(">I4s", 8 + len(body), kind) + body
    elif shape == "cut":
        body = body[:draw(st.integers(0, len(body)))]
    return _FTYP + body


@fuzz(100)
@example(data=_FTYP + struct.pack(">I4sQ", 1, b"uuid", 2**63) + XMP_UUID + b"<x/>")  # 2^63-byte claim
# More boxes than the walker takes from one container (each costs c2pa-rs ~10 reads and seeks: its budget).
@example(data=_FTYP + struct.pack(">I4s", 8 + 8 * 10_050, b"moov") + struct.pack(">I4s", 8, b"udta") * 10_050)
@given(data=mp4_files())
def test_mp4_box_trees(upload, data: bytes) -> None:
    check_provenance(upload(data, ".mp4"))


# ---------------------------------------------------------------- PNG, JPEG, WebP

_BOMB = zlib.compress(bytes(LIMIT * 4), 9)
_KEYWORDS = st.sampled_from([b"AIGC", b"XML:com.adobe.xmp", b"Software", b"aigc_info", b""]) | st.binary(max_size=90)


@st.composite
def _png_text(draw: st.DrawFn, kind: bytes) -> bytes:
    key = draw(_KEYWORDS) + draw(st.sampled_from([b"\x00", b"\x00", b""]))
    value = draw(st.one_of(aigc_values().map(str.encode), xmp_packets(), st.binary(max_size=64)))
    packed = draw(st.sampled_from([zlib.compress(value), _BOMB, value]))
    if kind == b"tEXt":
        return key + value
    if kind == b"zTXt":
        return key + b"\x00" + packed
    flag = draw(st.sampled_from([b"\x00", b"\x01", b"\x07"]))
    return key + flag + b"\x00" + b"en\x00" + draw(_TEXT).encode() + b"\x00" + (packed if flag == b"\x01" else value)


@st.composite
def png_files(draw: st.DrawFn) -> bytes:
    chunks = []
    for kind in draw(st.lists(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"caBX", b"IDAT", b"IEND", b"eXIf"])
                              | st.binary(min_size=4, max_size=4), max_size=6)):
        data = draw(_png_text(kind)) if kind in (b"tEXt", b"zTXt", b"iTXt") else \
            _jumbf(draw) if kind == b"caBX" else draw(st.binary(max_size=40))
        length = draw(st.sampled_from([len(data)] * 4) | _LIES) & 0xFFFFFFFF
        crc = zlib.crc32(kind + data) if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
        chunks.append(struct.pack(">I4s", length, kind) + data + struct.pack(">I", crc))
    ihdr = struct.pack(">I4s", 13, b"IHDR") + struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + ihdr + struct.pack(">I", zlib.crc32(ihdr[4:])) + b"".join(chunks)


@st.composite
def jpeg_files(draw: st.DrawFn) -> bytes:
    segments = []
    for marker in draw(st.lists(st.sampled_from([0xE0, 0xE1, 0xE1, 0xEB, 0xEB, 0xFE, 0xDB, 0xC0, 0xD0, 0x01, 0xFF])
                                | st.integers(0, 255), max_size=6)):
        if marker == 0xE1:
            header = draw(st.sampled_from([b"http://ns.adobe.com/xap/1.0/\x00", b"Exif\x00\x00"]))
            payload = header + draw(xmp_packets())
        elif marker == 0xEB:
            payload = b"JP" + struct.pack(">HI", 1, draw(st.integers(0, 2**32 - 1))) + _jumbf(draw)
        elif marker == 0xFE:
            payload = draw(_TEXT).encode()
        else:
            payload = draw(st.binary(max_size=30))
        payload = payload[:65533]
        length = draw(st.sampled_from([len(payload) + 2] * 4) | st.integers(0, 0xFFFF))
        segments.append(bytes([0xFF, marker]) + struct.pack(">H", length) + payload)
    tail = draw(st.sampled_from([b"\xff\xda\x00\x02", b"\xff\xd9", b""])) + draw(st.binary(max_size=32))
    return b"\xff\xd8" + b"".join(segments) + tail


@st.composite
def webp_files(draw: st.DrawFn) -> bytes:
    chunks = []
    for kind in draw(st.lists(st.sampled_from([b"VP8X", b"VP8 ", b"VP8L", b"XMP ", b"C2PA", b"EXIF", b"ANIM"])
                              | st.binary(min_size=4, max_size=4), max_size=6)):
        data = draw(xmp_packets()) if kind == b"XMP " else _jumbf(draw) if kind == b"C2PA" else \
            draw(st.binary(max_size=40))
        length = draw(st.sampled_from([len(data)] * 4) | _LIES) & 0xFFFFFFFF
        pad = b"\x00" * (len(data) & 1) if draw(st.booleans()) else b""
        chunks.append(kind + struct.pack("<I", length) + data + pad)
    body = b"WEBP" + b"".join(chunks)
    size = draw(st.sampled_from([len(body)] * 3) | _LIES) & 0xFFFFFFFF
    return b"RIFF" + struct.pack("<I", size) + body


@fuzz(60)
@given(data=png_files())
def test_png_chunks(upload, data: bytes) -> None:
    check_provenance(upload(data, ".png"))


@fuzz(60)
@given(data=jpeg_files())
def test_jpeg_segments(upload, data: bytes) -> None:
    check_provenance(upload(data, ".jpg"))


@fuzz(60)
@given(data=webp_files())
def test_webp_chunks(upload, data: bytes) -> None:
    check_provenance(upload(data, ".webp"))


# ---------------------------------------------------------------- XMP and AIGC values


@fuzz(80)
@given(packet=xmp_packets())
def test_xmp_packets(packet: bytes) -> None:
    with bounded():
        tags, errors = xmp_tags("fuzz", packet)
    assert all(t.location == "xmp (fuzz)" for t in tags)
    assert all(e.startswith("XMP in fuzz ") for e in errors)
    if packet.startswith(_DTD):
        assert tags == [] and "refused" in errors[0]


@fuzz(100)
@example(value='{"Label": ' + "[" * 950 + "]" * 950 + "}")   # json.dumps of it hit the recursion limit
@given(value=aigc_values())
def test_aigc_values(value: str) -> None:
    with bounded():
        reading = read_aigc("AIGC", value)
    assert reading.means_ai in (True, False)
    json.dumps([reading.summary, reading.error, reading.fields])


def test_aigc_nesting_never_reaches_the_recursion_limit() -> None:
    """Regression: a value parsed just under the recursion limit was re-encoded by json.dumps a few
    frames deeper and raised RecursionError out of read_provenance. Every depth is tried, because
    where the limit falls depends on the caller's stack."""
    for depth in range(1, 1100):
        for opener, closer in (("[", "]"), ('{"Label": ', "}")):
            reading = read_aigc("AIGC", '{"Label": ' + opener * depth + "1" + closer * depth + "}")
            assert depth <= 32 or reading.error, depth


# ---------------------------------------------------------------- mutations of real files

_CLIPS = ("fer_test", "bob_test_h264")
_FIXTURES = ("signed.mp4", "signed.jpg", "signed.png", "labels.mp4", "labels.png", "labels.webp", "labels.jpg")
SOURCES = (*sorted(PACKAGE_PHOTOS), *_CLIPS, *_FIXTURES)
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"meta", b"ilst", b"edts", b"dinf", b"moof",
               b"traf", b"mvex"}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The real files mutated: package photos, two real clips, and provenance fixtures built on them."""
    folder = tmp_path_factory.mktemp("originals")
    label = json.dumps(fx.GB_LABEL)
    packet = fx.xmp_packet(aigc=fx.GB_LABEL, digital_source_type="trainedAlgorithmicMedia", creator_tool="Sora")
    video = fx.write_video(folder / "labels.mp4", {"AIGC": label, "aigc_info": '{"aigc_label_type": 1}'})
    fx.add_to_moov(video, fx.itunes_udta({"©too": "Seedance 1.0"}))
    fx.append(video, fx.xmp_uuid_box(packet))
    built = {
        "signed.mp4": fx.sign_c2pa(footage.clip("bob_test_h264"), folder / "signed.mp4", "video/mp4",
                                   "trainedAlgorithmicMedia"),
        "signed.jpg": fx.sign_c2pa(package_photo("gdp.jpg"), folder / "signed.jpg", "image/jpeg",
                                   "compositeSynthetic"),
        "signed.png": fx.sign_c2pa(package_photo("astronaut.png"), folder / "signed.png", "image/png",
                                   "digitalCapture"),
        "labels.mp4": video,
        "labels.png": fx.write_png(folder / "labels.png", [fx.png_text("AIGC", label),
                                                           fx.png_itxt("XML:com.adobe.xmp", packet, True)]),
        "labels.webp": fx.write_webp(folder / "labels.webp", packet),
        "labels.jpg": fx.write_jpeg(folder / "labels.jpg", [fx.jpeg_xmp(packet),
                                                            fx.jpeg_segment(0xFE, b"Midjourney v6")]),
    }
    files = {name: package_photo(name) for name in PACKAGE_PHOTOS}
    files |= {name: footage.clip(name) for name in _CLIPS} | built
    return {name: path.read_bytes() for name, path in files.items()}


def landmarks(data: bytes) -> list[int]:
    """Offsets of box, chunk and segment headers: where a mutation does the most damage."""
    if data[4:8] in (b"ftyp", b"moov", b"wide", b"mdat", b"free"):
        return _bmff_headers(data, 0, len(data))
    if data.startswith(PNG_SIGNATURE):
        return _chunk_headers(data, 8, lambda d, p: 12 + struct.unpack(">I", d[p:p + 4])[0])
    if data.startswith(b"RIFF"):
        return _chunk_headers(data, 12, lambda d, p: 8 + (n := struct.unpack("<I", d[p + 4:p + 8])[0]) + (n & 1))
    if data.startswith(b"\xff\xd8"):
        return _chunk_headers(data, 2, lambda d, p: 2 + struct.unpack(">H", d[p + 2:p + 4])[0]
                              if d[p + 1] not in (0xDA, 0xD9) else len(d))
    return []


def _bmff_headers(data: bytes, start: int, end: int, depth: int = 0) -> list[int]:
    found, pos = [], start
    while pos + 8 <= end and len(found) < 1000:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        size = end - pos if size == 0 else size
        if size < header:
            break
        found.append(pos)
        if kind in _CONTAINERS and depth < 8:
            found += _bmff_headers(data, pos + header + (4 if kind == b"meta" else 0), min(end, pos + size), depth + 1)
        pos += size
    return found


def _chunk_headers(data: bytes, pos: int, step: Callable[[bytes, int], int]) -> list[int]:
    found = []
    while pos + 8 <= len(data) and len(found) < 1000:
        found.append(pos)
        pos += max(1, step(data, pos))
    return found


_BOUNDARY = [b"\x00" * 4, b"\xff" * 4, b"\x00\x00\x00\x01", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x08", b"\xff\xff",
             b"\x00", b"\xff" * 8, bytes(7) + b"\x10", b"\x80" + bytes(7)]
_WHERE = st.tuples(st.booleans(), st.integers(0, 2**16), st.integers(-2, 24))   # (at a header?, which, offset)
_OPS = st.one_of(
    st.tuples(st.just("flip"), _WHERE, st.integers(0, 7)),
    st.tuples(st.just("set"), _WHERE, st.sampled_from(_BOUNDARY)),
    st.tuples(st.just("truncate"), _WHERE),
    st.tuples(st.just("delete"), _WHERE, st.integers(1, 4096)),
    st.tuples(st.just("duplicate"), _WHERE, st.integers(1, 4096)),
    st.tuples(st.just("splice"), _WHERE, st.sampled_from(SOURCES), _WHERE, st.integers(1, 4096)),
)


def mutate(originals: dict[str, bytes], name: str, ops: list[tuple]) -> bytes:
    data = bytearray(originals[name])
    for op in ops:
        pos = _resolve(bytes(data), op[1])
        if op[0] == "flip":
            data[pos] ^= 1 << op[2]
        elif op[0] == "set":
            data[pos:pos + len(op[2])] = op[2]
        elif op[0] == "truncate":
            del data[pos:]
        elif op[0] == "delete":
            del data[pos:pos + op[2]]
        elif op[0] == "duplicate":
            data[pos:pos] = data[pos:pos + op[2]]
        else:
            other = originals[op[2]]
            at = _resolve(other, op[3])
            data[pos:pos] = other[at:at + op[4]]
        if not data:
            break
    return bytes(data)


def _resolve(data: bytes, where: tuple[bool, int, int]) -> int:
    at_header, which, offset = where
    marks = landmarks(data) if at_header else []
    pos = marks[which % len(marks)] + offset if marks else which * len(data) // 2**16
    return min(max(pos, 0), max(len(data) - 1, 0))


_MUTATED = st.tuples(st.sampled_from(SOURCES), st.lists(_OPS, min_size=1, max_size=4))


@fuzz(80)
@example(case=("fer_test", [("set", (True, 2, 8), bytes(7) + b"\x10")]))        # mdat's 64-bit size: 16
@example(case=("signed.mp4", [("flip", (True, 2, 30), 0)]))                      # inside the C2PA store
@example(case=("signed.jpg", [("truncate", (True, 3, 40))]))                     # APP11 cut off
@example(case=("bob_test_h264", [("set", (True, 18, 23), b"\xff")]))  # codec tag avc1 -> avc\xff: no decoder
@given(case=_MUTATED)
def test_mutated_real_files(originals: dict[str, bytes], upload, case: tuple[str, list[tuple]]) -> None:
    name, ops = case
    data = mutate(originals, name, ops)
    suffix = Path(name).suffix or ".mp4"
    path = upload(data, suffix)
    check_provenance(path)
    if suffix == ".mp4":
        check_video(path)


def test_unmutated_sources_are_read_in_full(originals: dict[str, bytes], upload) -> None:
    """What the mutations damage is really there: every signed store validates, every label is read."""
    for name in _FIXTURES:
        result = check_provenance(upload(originals[name], Path(name).suffix))
        assert result.errors == [], (name, result.errors)
        if name.startswith("signed."):
            assert result.c2pa["validation_state"] == "Valid", name
        else:
            assert result.declares_ai and result.ai_label_present, name


def test_mutations_land_on_headers(originals: dict[str, bytes]) -> None:
    """The landmarks the mutations aim at are real headers of every source (else they aim nowhere)."""
    for name, data in originals.items():
        assert len(landmarks(data)) >= 3, name


# ---------------------------------------------------------------- the whole scan on damaged real clips

_SCAN_CASES = {
    "mdat cut in half": ("bob_test_h264", [("truncate", (False, 2**15, 0))]),
    "moov cut off": ("fer_test", [("truncate", (True, 2, 300))]),
    "bytes flipped across mdat": ("fer_test", [("flip", (False, k * 2**16 // 24, 0), 5) for k in range(1, 24)]),
    "stsz sample count lies": ("fer_test", [("set", (True, 21, 16), b"\xff\xff\xff\xff")]),
    "stsz sample sizes huge": ("bob_test_h264", [("set", (True, 23, 20 + 4 * k), b"\x7f\xff\xff\xff")
                                                 for k in range(0, 40, 3)]),
    "stco chunk offsets past the end": ("bob_test_h264", [("set", (True, 24, 16), b"\x7f\xff\xff\xff")]),
    "mdat's 64-bit size lies": ("fer_test", [("set", (True, 1, 8), b"\x80" + bytes(7))]),
}


@pytest.mark.parametrize("case", list(_SCAN_CASES), ids=list(_SCAN_CASES))
def test_scan_of_damaged_real_clip(originals: dict[str, bytes], runtime, tmp_path: Path, case: str) -> None:
    """Scanner.scan, the in-process entry point the CLI and the segments use, on a damaged real clip:
    a report, or VideoInputError naming the file; nothing else, within the time limit."""
    name, ops = _SCAN_CASES[case]
    path = tmp_path / "damaged.mp4"
    path.write_bytes(mutate(originals, name, ops))
    with bounded(seconds=120, python_bytes=None, address_space=None):
        try:
            report = build_report(runtime.scanner.scan(path, None))
        except VideoInputError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), exc
            return
    json.dumps(report)
    assert report["video"]["frames_decoded"] > 0 and report["verdict"]["action"]
