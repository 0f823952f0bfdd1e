"""Build the library of generator logos that ``pipeline/onscreen/logos.py`` looks for.

The marks are drawn from one public package: the npm package ``@lobehub/icons-static-png`` (LobeHub's
brand icon collection of AI products, MIT licensed), pinned by version and by the registry's sha512
integrity. Each mark's template is the icon's alpha channel (the shape, 255 where the logo is),
cropped to its extent and scaled to ``SIDE`` pixels on its long side: generators burn their logo in as
a white, semi-transparent shape, so the shape is what is left to find.

Only marks whose generator shows that icon as its visible watermark are built (``MARKS``; the claim
and how sure it is are written to marks.json and docs/synthetic.md). Output: ``<out>/<name>.png``
(8-bit grey) and ``<out>/marks.json`` (source, licence, and per mark: generator, file, its SHA-256,
the member it came from, what the visible mark looks like and where it is placed). The tarball is
not committed; run ``python tools/build_mark_library.py`` (fetches it with ``npm pack``) or pass
``--tarball`` with a copy.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = "@lobehub/icons-static-png"
VERSION = "1.97.1"
# `npm view @lobehub/icons-static-png@1.97.1 dist`
INTEGRITY = "sha512-ZeK0Pf2wKlpOyEjHeAkjnCW4WViqpUC6CKbjTQJuuqymRT5n4pBiRFBr8/l79y0Y9fhWSFO3y5qOm2LG55LKGg=="
SHASUM = "51c57f95f7f00bbe08c642a9f4a8c13bd2eaea8d"
TARBALL_URL = "https://registry.npmjs.org/@lobehub/icons-static-png/-/icons-static-png-1.97.1.tgz"
LICENSE = ("MIT: the package's package.json ('license': 'MIT') and README ('Copyright (c) 2023 LobeHub. "
           "This project is MIT licensed.'); the tarball ships no LICENSE file. The logos are trademarks "
           "of their owners, used here only to recognise those owners' own watermarks.")
SIDE = 64  # template long side in pixels; the matcher scales it to every size it looks for
OUT = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "marks"


@dataclass(frozen=True)
class Mark:
    name: str
    generator: str      # as pipeline/onscreen/marks.py names generators
    member: str         # path inside the npm tarball
    looks: str          # the visible mark
    placement: str      # where generators put it
    region: tuple[float, float, float, float]  # where the matcher looks for its centre: x0, y0, x1, y1 (fractions)
    moves: bool         # it changes place during a clip
    claim: str          # why we say the generator shows this icon, and how sure that is


MARKS = (
    Mark("gemini_sparkle", "gemini", "package/light/gemini.png",
         "Google's four-point Gemini sparkle, white and semi-transparent (alpha-blended), no text",
         "bottom-right corner, a fixed margin from the edges; about 48 px on outputs up to 1024 px and 96 px "
         "on larger ones (4-9% of the width)",
         (0.6, 0.5, 1.0, 1.0), False,
         "Reported by several third-party write-ups (2025-2026; not read in Google's own documentation here): the "
         "Gemini app composites a semi-transparent sparkle watermark into the bottom-right corner of images it "
         "generates (Nano Banana), besides the invisible SynthID. That the same sparkle "
         "appears on video (Veo through the Gemini app, whose visible mark has been the word 'Veo') is an "
         "assumption; clips made from such images (slideshows, image-to-video) carry it."),
    Mark("sora_cloud", "sora", "package/light/sora.png",
         "the Sora app's cloud with two eyes, white and semi-transparent, beside the word 'Sora' and the "
         "creator's @handle",
         "moves around the frame during the clip (it jumps between places every second or two)",
         (0.0, 0.0, 1.0, 1.0), True,
         "Reported by OpenAI's launch coverage and third-party write-ups (2025-2026): the Sora app (Sora 2) puts "
         "a visible, moving watermark on downloads, its animated cloud logo with 'Sora' and the creator's "
         "handle. The cloud is animated, so its face changes; the "
         "outline stays. That the package's icon is that cloud is checked by eye against the app icon."),
)


def npm_pack(folder: Path) -> Path:
    """``npm pack`` the pinned version into ``folder``; the tarball's path."""
    name = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(folder)],
                          check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return folder / name


def check_integrity(data: bytes) -> None:
    algorithm, _, expected = INTEGRITY.partition("-")
    found = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if found != expected:
        raise RuntimeError(f"{PACKAGE}@{VERSION}: integrity {algorithm}-{found}, expected {INTEGRITY}")


def template(png: bytes) -> Image.Image:
    """The icon's alpha channel, cropped to the logo and scaled to SIDE on its long side."""
    alpha = Image.open(io.BytesIO(png)).convert("RGBA").getchannel("A")
    box = alpha.getbbox()
    if box is None:
        raise RuntimeError("icon is fully transparent")
    alpha = alpha.crop(box)
    scale = SIDE / max(alpha.size)
    size = (max(1, round(alpha.width * scale)), max(1, round(alpha.height * scale)))
    return alpha.resize(size, Image.Resampling.LANCZOS)


def build(tarball: Path, out: Path) -> dict:
    data = tarball.read_bytes()
    check_integrity(data)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for mark in MARKS:
            member = archive.extractfile(mark.member)
            if member is None:
                raise RuntimeError(f"{mark.member} is not a file in {PACKAGE}@{VERSION}")
            image = template(member.read())
            path = out / f"{mark.name}.png"
            image.save(path, optimize=True)
            written = path.read_bytes()
            entry = asdict(mark) | {"file": path.name, "sha256": hashlib.sha256(written).hexdigest(),
                                    "size": list(image.size),
                                    "coverage": round(float(np.asarray(image, np.float32).mean() / 255), 3)}
            entries.append(entry)
    library = {"source": {"package": PACKAGE, "version": VERSION, "integrity": INTEGRITY, "shasum": SHASUM,
                          "tarball": TARBALL_URL, "license": LICENSE},
               "template": f"the icon's alpha channel (255 = logo), cropped to the logo, {SIDE} px long side",
               "marks": entries}
    (out / "marks.json").write_text(json.dumps(library, indent=1, ensure_ascii=False) + "\n")
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarball", type=Path, help=f"a copy of {PACKAGE}-{VERSION}.tgz (default: npm pack it)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.tarball is not None:
        library = build(args.tarball, args.out)
    else:
        with tempfile.TemporaryDirectory() as folder:
            library = build(npm_pack(Path(folder)), args.out)
    for mark in library["marks"]:
        print(f"{mark['file']}: {mark['generator']} {mark['size']} from {mark['member']}")


if __name__ == "__main__":
    main()
