"""Builders for real media files carrying provenance metadata, for the provenance tests.

Videos are real H.264 MP4/MOV written by PyAV; images are real cv2 encodes with metadata
segments spliced in; C2PA manifests are signed by c2pa-python with a throwaway ES256 CA + leaf
made here with `cryptography`, so nothing depends on files from outside the test run.
"""
from __future__ import annotations

import datetime
import json
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import av
import c2pa
import cv2
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.provenance.mp4 import C2PA_UUID, XMP_UUID

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
GB_LABEL = {"Label": "1", "ContentProducer": "001191110108MA01XXXXX00001", "ProduceID": "p-20250901-0001",
            "ReservedCode1": "", "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}


# ---------------------------------------------------------------- video


def frames(n: int = 6, size: int = 64) -> list[np.ndarray]:
    """Moving gradient frames: real content for the encoder, not a constant picture."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    return [np.stack([np.roll(ramp, 4 * i)[None, :].repeat(size, 0)] * 3, axis=-1).astype(np.uint8)
            for i in range(n)]


def write_video(path: Path, metadata: dict[str, str] | None = None,
                stream_metadata: dict[str, str] | None = None, fmt: str = "mp4") -> Path:
    """H.264 video; every container key is written (`use_metadata_tags`), as ffmpeg would."""
    options = {"movflags": "use_metadata_tags"} if fmt == "mp4" else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.metadata.update(stream_metadata or {})
        for image in frames():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def uuid_box(usertype: bytes, payload: bytes) -> bytes:
    return box(b"uuid", usertype + payload)


def xmp_uuid_box(packet: bytes) -> bytes:
    return uuid_box(XMP_UUID, packet)


def c2pa_uuid_box(payload: bytes) -> bytes:
    """A C2PA-typed uuid box (version/flags, purpose "manifest", offset) around arbitrary bytes."""
    return uuid_box(C2PA_UUID, b"\x00\x00\x00\x00manifest\x00" + bytes(8) + payload)


def top_level_boxes(path: Path) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each top-level box, for placing or checking boxes in fixtures."""
    data, pos, out = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind.decode("latin-1"), pos, size))
        pos += size
    return out


def append(path: Path, data: bytes) -> Path:
    with open(path, "ab") as f:
        f.write(data)
    return path


def add_to_moov(path: Path, child: bytes) -> Path:
    """Append a child box to moov; PyAV writes moov last, so no chunk offset moves."""
    kind, offset, size = top_level_boxes(path)[-1]
    assert kind == "moov", "moov must be the last top-level box"
    data = bytearray(path.read_bytes())
    data[offset:offset + 4] = struct.pack(">I", size + len(child))
    path.write_bytes(bytes(data) + child)
    return path


def itunes_udta(items: dict[str, str]) -> bytes:
    """udta/meta(hdlr mdir)/ilst with iTunes-style text items such as '©too'."""
    ilst = b"".join(box(name.encode("latin-1"), box(b"data", struct.pack(">II", 1, 0) + value.encode()))
                    for name, value in items.items())
    hdlr = box(b"hdlr", bytes(8) + b"mdirappl" + bytes(9))
    return box(b"udta", box(b"meta", bytes(4) + hdlr + box(b"ilst", ilst)))


def mdta_meta(items: dict[str, str], full_box: bool) -> bytes:
    """meta(hdlr mdta)/keys/ilst as QuickTime writes it: moov/meta without version/flags when
    full_box is False (Apple), udta/meta with them (ffmpeg's use_metadata_tags)."""
    keys = b"".join(struct.pack(">I", 8 + len(k.encode())) + b"mdta" + k.encode() for k in items)
    ilst = b"".join(box(struct.pack(">I", i), box(b"data", struct.pack(">II", 1, 0) + v.encode()))
                    for i, v in enumerate(items.values(), start=1))
    hdlr = box(b"hdlr", bytes(8) + b"mdta" + bytes(13))
    children = hdlr + box(b"keys", struct.pack(">II", 0, len(items)) + keys) + box(b"ilst", ilst)
    return box(b"meta", (bytes(4) if full_box else b"") + children)


def flip_byte_in_mdat(path: Path) -> Path:
    _, offset, size = next(b for b in top_level_boxes(path) if b[0] == "mdat")
    data = bytearray(path.read_bytes())
    data[offset + size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------- XMP


def xmp_packet(aigc: dict | None = None, digital_source_type: str | None = None,
               creator_tool: str | None = None, as_elements: bool = False) -> bytes:
    """An XMP packet; properties as attributes (compact form) or as elements."""
    props = {}
    if aigc is not None:
        props["TC260:AIGC"] = json.dumps(aigc)
    if creator_tool is not None:
        props["xmp:CreatorTool"] = creator_tool
    if as_elements:
        body = "".join(f"<{k}>{_escape(v)}</{k}>" for k, v in props.items())
        if digital_source_type:
            body += f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC_DST}{digital_source_type}"/>'
        attrs = ""
    else:
        if digital_source_type:
            props["Iptc4xmpExt:DigitalSourceType"] = IPTC_DST + digital_source_type
        attrs, body = "".join(f' {k}="{_escape(v)}"' for k, v in props.items()), ""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"{attrs}>{body}'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


# ---------------------------------------------------------------- images


def _picture() -> np.ndarray:
    return frames(1, 48)[0]


def write_jpeg(path: Path, segments: list[bytes]) -> Path:
    """cv2 JPEG with extra marker segments placed after APP0 (JFIF)."""
    data = cv2.imencode(".jpg", _picture())[1].tobytes()
    cut = 2 + 2 + struct.unpack(">H", data[4:6])[0] if data[2:4] == b"\xff\xe0" else 2
    path.write_bytes(data[:cut] + b"".join(segments) + data[cut:])
    return path


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_xmp(packet: bytes) -> bytes:
    return jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet)


def write_png(path: Path, chunks: list[bytes]) -> Path:
    """cv2 PNG with extra chunks placed right after IHDR."""
    data = cv2.imencode(".png", _picture())[1].tobytes()
    path.write_bytes(data[:33] + b"".join(chunks) + data[33:])
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I4s", len(data), kind) + data + struct.pack(">I", zlib.crc32(kind + data))


def png_text(key: str, value: str) -> bytes:
    return png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))


def png_itxt(key: str, value: bytes, compressed: bool = False) -> bytes:
    body = zlib.compress(value) if compressed else value
    return png_chunk(b"iTXt", key.encode() + b"\x00" + bytes([int(compressed), 0]) + b"\x00\x00" + body)


def png_ztxt(key: str, value: bytes) -> bytes:
    return png_chunk(b"zTXt", key.encode("latin-1") + b"\x00\x00" + zlib.compress(value, 9))


def write_webp(path: Path, packet: bytes) -> Path:
    """Extended-format WebP (VP8X with the XMP flag) carrying an 'XMP ' chunk."""
    simple = cv2.imencode(".webp", _picture())[1].tobytes()
    h, w = _picture().shape[:2]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x04, 0, 0, 0]) + (w - 1).to_bytes(3, "little") \
        + (h - 1).to_bytes(3, "little")
    xmp = b"XMP " + struct.pack("<I", len(packet)) + packet + b"\x00" * (len(packet) & 1)
    body = b"WEBP" + vp8x + simple[12:] + xmp
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


# ---------------------------------------------------------------- C2PA


@lru_cache(maxsize=1)
def cert_chain() -> tuple[bytes, bytes]:
    """(leaf + CA certificate PEM, leaf private key PEM): ES256, leaf with the emailProtection EKU."""
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Likeness Test")])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    def base(subject: str, issuer: x509.Name, key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (base("Likeness Test CA", name("Likeness Test CA"), ca_key)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(sign=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (base("Likeness Test Signer", ca.subject, leaf_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return chain, key


def sign_c2pa(src: Path, dst: Path, mime: str, digital_source_type: str,
              generator: str = "Likeness Test Generator", remote_url: str | None = None) -> Path:
    """Sign a manifest whose only action is c2pa.created with the given source type; embedded,
    or with remote_url only a reference to a manifest on a server is left in the file."""
    chain, key = cert_chain()
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=key, ta_url=None)
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": src.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": IPTC_DST + digital_source_type}]}}],
    }
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder, \
            open(src, "rb") as source, open(dst, "w+b") as dest:
        if remote_url:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        builder.sign(signer, mime, source, dest)
    return dst
