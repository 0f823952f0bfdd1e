"""`likeness`: the front door (gallery add/list/remove, scan, demo, worker, serve).

Exit 0 on success; otherwise one line on stderr and a non-zero exit. Reports go to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from gallery.store import KINDS, check_match_threshold
from pipeline.models import ModelNotFoundError
from pipeline.policy import DEFAULT_POLICY, Policy
from pipeline.image_scan import media_kind
from pipeline.post import check_items, declaration_of, scan_post
from pipeline.report import build_post_report, build_report, write_thumbnails
from pipeline.video import VideoInputError, probe
from workers.cli.demo import run_demo
from workers.enrollment import enroll_character
from workers.cli.service import SERVICE_COMMANDS, add_service_commands
from workers.runtime import Runtime
from workers.settings import Settings
from workers.data.files import write_atomic

EXIT_INPUT = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit non-zero."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="likeness", description="Likeness and impersonation detection.")
    parser.add_argument("--home", type=Path, help="gallery and results directory (env LIKENESS_HOME)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading and stages")
    commands = parser.add_subparsers(dest="command", required=True)

    gallery = commands.add_parser("gallery", help="registered likenesses").add_subparsers(dest="gallery_command",
                                                                                      required=True)
    add = gallery.add_parser("add", help="register a likeness from reference images and clips")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", choices=KINDS, default="person")
    add.add_argument("--owner", default="local", help="rights holder who owns this likeness")
    add.add_argument("--policy", choices=[p.value for p in Policy], default=DEFAULT_POLICY.value)
    add.add_argument("--authorize", nargs="*", default=[], metavar="UPLOADER",
                     help="uploaders always allowed to use this likeness")
    add.add_argument("--threshold", type=float, default=None,
                     help="--kind person: a stricter match threshold (cosine similarity, -1 to 1) for this "
                          "likeness alone (known look-alikes)")
    add.add_argument("--face", default=None,
                     help="which face in photos with several: 'largest' or N (0 = leftmost); in a reference "
                          "clip, which person: 'largest' (seen most) or N (N-th most seen)")
    add.add_argument("--played-by", nargs="*", default=[], metavar="ID",
                     help="with --kind character: ids of the registered people who play it (after the files)")
    add.add_argument("files", nargs="+", type=Path)

    listing = gallery.add_parser("list", help="list registered likenesses")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--owner", default=None)

    remove = gallery.add_parser("remove", help="remove a likeness, its vectors and reference copies")
    remove.add_argument("identity_id")
    remove.add_argument("--owner", default=None, help="only if owned by this rights holder")

    scan = commands.add_parser("scan", help="scan a video, or a post (images and videos with a caption), in-process")
    scan.add_argument("video", type=Path, nargs="+", metavar="FILE",
                      help="a video; or several images and videos scanned as one post (one verdict, "
                           "per-item findings)")
    scan.add_argument("--caption", default=None,
                      help="the post's caption: a declaration in it ('#AI生成', 'AI-generated') counts as the "
                           "uploader's own; with --caption even one file is reported as a post")
    scan.add_argument("--uploader", default=None,
                      help="who uploaded it, compared as given with the owner and the authorised uploaders "
                           "(one local namespace; the service prefixes the platform)")
    scan.add_argument("--declared-ai", action="store_true",
                      help="the uploader declared the video or post AI-generated (the platform's declaration "
                           "field: the creator's own label at upload)")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")
    scan.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    scan.add_argument("--thumbnails", type=Path, default=None, help="write evidence face crops here")
    scan.add_argument("--no-progress", action="store_true")

    commands.add_parser("demo", help="build a sample video from package photos, register a likeness, scan it")
    add_service_commands(commands)
    return parser


def _face_choice(value: str | None) -> str | int | None:
    if value is None or value == "largest":
        return value
    if value.isdigit():
        return int(value)
    raise CliError(f"--face must be 'largest' or a number, not {value!r}")


def cmd_gallery_add(runtime: Runtime, args) -> int:
    check_match_threshold(args.threshold)  # before any model loads
    if args.kind == "character":
        return _add_character(runtime, args)
    if args.played_by:
        raise CliError("--played-by is for --kind character")
    with tempfile.TemporaryDirectory(prefix="likeness-frames-") as frames_dir:  # stills of reference clips
        enrollment = runtime.enroller.enroll(args.files, face=_face_choice(args.face), frames_dir=Path(frames_dir))
        output = {"accepted": [a.label for a in enrollment.accepted],
                  "references": [{"file": a.label, "yaw": a.yaw, "pitch": a.pitch} for a in enrollment.accepted],
                  "rejected": [{"file": str(r.path), "reason": r.reason} for r in enrollment.rejected],
                  **({"clips": enrollment.clips} if enrollment.clips else {})}
        if not enrollment.accepted:
            print(json.dumps({"id": None, **output}, indent=2))
            reasons = "; ".join(f"{r.path.name}: {r.reason}" for r in enrollment.rejected)
            raise CliError(f"no reference image accepted ({reasons})")
        info = runtime.gallery.add(args.name, args.kind, args.owner, args.policy, args.authorize, enrollment,
                                   match_threshold=args.threshold)
    print(json.dumps({"id": info.id, "name": info.name, "kind": info.kind, "owner": info.owner,
                      "policy": info.policy, **output}, indent=2))
    return 0


def _add_character(runtime: Runtime, args) -> int:
    """Stills, artwork or short clips: every one embedded whole and cropped for the image path,
    faces (where usable) for the face path too."""
    if args.threshold is not None:
        raise CliError("--threshold is for --kind person")
    with tempfile.TemporaryDirectory(prefix="likeness-frames-") as frames_dir:
        refs = enroll_character(runtime, args.files, Path(frames_dir), _face_choice(args.face))
        faces, crops, rejected = refs.faces, refs.crops, refs.rejected
        labels = {i.path: i.label for i in refs.images}
        output = {"accepted": sorted({r.image.label for r in crops.references}),
                  "rejected": [{"file": labels.get(r.path, str(r.path)), "reason": r.reason} for r in rejected],
                  "face_references": [labels[a.path] for a in faces.accepted],
                  "image_references": len(crops.references)}
        if not crops.references:
            print(json.dumps({"id": None, **output}, indent=2))
            raise CliError(f"no reference image accepted ({'; '.join(f'{r.path.name}: {r.reason}' for r in rejected)})")
        info = runtime.character_gallery.add(runtime.gallery, args.name, args.owner, args.policy, args.authorize,
                                             faces, crops, args.played_by)
    played_by = [a.name for a in runtime.character_gallery.cast(info.id)]
    print(json.dumps({"id": info.id, "name": info.name, "kind": info.kind, "owner": info.owner,
                      "policy": info.policy, "played_by": played_by, **output}, indent=2))
    return 0


def cmd_gallery_list(runtime: Runtime, args) -> int:
    rows = runtime.gallery.identities(args.owner)
    if args.json:
        print(json.dumps([{"id": i.id, "name": i.name, "kind": i.kind, "owner": i.owner, "policy": i.policy,
                           "authorized_uploaders": list(i.authorized_uploaders), "match_threshold": i.match_threshold,
                           "references": n}
                          for i, n in rows], indent=2))
    else:
        for info, n in rows:
            print(f"{info.id}  {info.kind:<9} {info.name}  (owner {info.owner}, policy {info.policy}, {n} refs)")
    return 0


def cmd_gallery_remove(runtime: Runtime, args) -> int:
    try:
        info = runtime.character_gallery.remove(runtime.gallery, args.identity_id, args.owner)
    except KeyError as exc:
        raise CliError(exc.args[0]) from exc
    print(json.dumps({"removed": info.id, "name": info.name}))
    return 0


def run_scan(runtime: Runtime, video: Path, uploader: str | None, show_progress: bool, declared_ai: bool = False):
    """Scan in-process with a progress bar on stderr (seconds of video done / total). Broken input
    is refused before any model loads; the scan reuses that probe."""
    started = time.perf_counter()
    info = probe(video, runtime.settings.scan.sampling)
    probe_ms = (time.perf_counter() - started) * 1000.0
    gallery = runtime.gallery
    gallery.refresh()
    bar: tqdm | None = None

    def progress(done_s: float, total_s: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=round(total_s, 1), unit="s", desc="scanning", file=sys.stderr, disable=not show_progress,
                       bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
        bar.update(max(0.0, round(done_s, 1) - bar.n))

    searcher = gallery if len(gallery) else None
    scanner = runtime.scanner
    try:
        observation = scanner.observe(video, progress, info=info, gallery=gallery)
        observation.timings_ms["probe"] = probe_ms
        return scanner.decide(observation, searcher, uploader, declared_ai)
    finally:
        if bar is not None:
            bar.close()


def run_post(runtime: Runtime, files: list[Path], uploader: str | None, caption: str, declared_ai: bool):
    """Scan a post in-process: every item checked before any model loads, then scanned in order."""
    declaration_of(caption, declared_ai)  # an oversized caption is refused before any work
    items = check_items(files, runtime.scanner)
    gallery = runtime.gallery
    gallery.refresh()
    return scan_post(runtime.scanner, items, gallery if len(gallery) else None, uploader, caption, declared_ai)


def _is_post(args) -> bool:
    return len(args.video) > 1 or args.caption is not None or media_kind(args.video[0]) == "image"


def cmd_scan(runtime: Runtime, args) -> int:
    if _is_post(args):
        post = run_post(runtime, args.video, args.uploader, args.caption or "", args.declared_ai)
        report = build_post_report(post)
        if args.thumbnails:
            for item, result in zip(post.items, post.results):
                write_thumbnails(result, args.thumbnails / f"item-{item.index}")
    else:
        result = run_scan(runtime, args.video[0], args.uploader, show_progress=not args.no_progress,
                          declared_ai=args.declared_ai)
        report = build_report(result)
        if args.thumbnails:
            write_thumbnails(result, args.thumbnails)
    text = json.dumps(report, indent=2)
    if args.out:
        write_atomic(args.out, text.encode())
    if args.json:
        print(text)
    else:
        print(_summary(report))
    return 0


def _summary(report: dict) -> str:
    lines = [f"verdict: {report['verdict']['action']}"] + [f"  - {r}" for r in report["verdict"]["reasons"]]
    if "post" in report:
        for f in report["findings"]:
            lines.append(f"finding: item {f['item']}: {f['identity']['name']} ({f['category']}) "
                         f"similarity {f['similarity']:.2f} -> {f['action']}")
        scores = ", ".join(f"{i['synthetic']['score']:.2f}" for i in report["items"])
        lines.append(f"items: {report['post']['items']}, synthetic scores {scores}")
        return "\n".join(lines)
    for f in report["findings"]:
        lines.append(f"finding: {f['identity']['name']} ({f['category']}) {f['start_s']:.1f}-{f['end_s']:.1f} s "
                     f"similarity {f['similarity']:.2f} -> {f['action']}")
    lines.append(f"tracks: {len(report['tracks'])}, synthetic score {report['synthetic']['score']:.2f}")
    return "\n".join(lines)


def cmd_demo(runtime: Runtime, args) -> int:
    report = run_demo(runtime)
    print(json.dumps(report, indent=2))
    return 0


COMMANDS = {("gallery", "add"): cmd_gallery_add, ("gallery", "list"): cmd_gallery_list,
            ("gallery", "remove"): cmd_gallery_remove, ("scan", None): cmd_scan, ("demo", None): cmd_demo,
            **SERVICE_COMMANDS}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings(**({"home": args.home} if args.home else {}))
        runtime = Runtime(settings)
        handler = COMMANDS[(args.command, getattr(args, "gallery_command", None))]
        return handler(runtime, args)
    except (CliError, VideoInputError, ValueError, FileNotFoundError, PermissionError, ModelNotFoundError) as exc:
        print(f"likeness: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("likeness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
