"""Getting files into the media root safely: bounded copies with a hash, atomic writes, and
submitted paths that cannot leave the submitting platform's folder (no absolute paths, no `..`, no
control characters, no symlink pointing outside).

Media root layout:

    <media root>/platforms/<principal>/...   each platform's own files, submitted by `path`
    <media root>/uploads/<scan id>/          the API's copy of a multipart upload
    <media root>/enroll/<job id>/            reference images staged for a registration
    <media root>/evidence/<scan id>/         evidence images of a scan's findings
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PATH = 1024  # characters of a submitted path
_MAX_PART = 255  # bytes of one name in it (what file systems allow)
PLATFORMS = "platforms"


class UploadRefused(Exception):
    """The request's file cannot be taken; `status` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def safe_suffix(filename: str | None, default: str) -> str:
    """The client's file extension when it is a plain one; the client's name is never used as a path."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if _SUFFIX.match(suffix) else default


def upload_dir(media_root: Path, job_id: str) -> Path:
    """Where the API stores a scan's multipart upload: the job's own folder, so deleting the scan
    removes exactly what the API wrote (never a platform's file submitted by `path`)."""
    return media_root / "uploads" / job_id


def platform_dir(media_root: Path, principal: str) -> Path:
    """The folder a platform's `path` submissions resolve in: <media root>/platforms/<principal>."""
    if not principal or CONTROL.search(principal) or "/" in principal or "\\" in principal \
            or principal in (".", ".."):
        raise UploadRefused(403, f"this platform's principal {principal!r} cannot name a folder; ask an admin "
                                 "for a key whose principal has no '/', '\\' or control characters")
    return media_root / PLATFORMS / principal


def resolve_platform_path(media_root: Path, principal: str, relative: str, limit: int) -> Path:
    """The file a platform submitted by `path`: relative to <media root>/platforms/<principal>, and
    inside it (never another platform's folder, nor the API's own copies under uploads/)."""
    return resolve_in_root(platform_dir(media_root, principal), relative, limit, platform_folder=True)


def display_name(filename: str | None, default: str) -> str:
    """A client's file name as shown back to it (reports): its last part, control characters removed."""
    name = CONTROL.sub("", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()[:200]
    return name or default


def remove_tree(folder: Path) -> None:
    """Delete a folder for good; gone already is fine, any other failure raises (and can be retried)."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass


def save_bounded(source: BinaryIO, target: Path, limit: int) -> str:
    """Copy at most `limit` bytes to `target` (appearing whole or not at all); returns the SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(413, f"file larger than the limit of {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadRefused(400, "empty file")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` so that readers see the whole file or none (a temporary file
    beside it, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def resolve_in_root(root: Path, relative: str, limit: int, *, platform_folder: bool = False) -> Path:
    """The regular file `relative` names inside `root` (a platform's folder), or UploadRefused (its
    reason starts with `path:`). Symlinks are followed, and the file they reach must be inside `root`;
    with `platform_folder`, `root` itself must be no symlink (it would lead into another folder)."""
    if len(relative) > MAX_PATH:
        raise UploadRefused(400, f"path: longer than {MAX_PATH} characters")
    if CONTROL.search(relative):
        raise UploadRefused(400, "path: must not contain control characters (NUL, newline, ...)")
    candidate = Path(relative)
    if not relative or candidate.is_absolute() or ".." in candidate.parts:
        raise UploadRefused(400, "path: must be relative to your platform's folder, without '..'")
    if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_PART for part in candidate.parts):
        raise UploadRefused(400, f"path: a name in it is longer than {_MAX_PART} bytes")
    try:
        lexical = root.parent.resolve() / root.name
        root = root.resolve()
        resolved = (root / candidate).resolve()
        if not resolved.is_relative_to(root) or (platform_folder and root != lexical):
            raise UploadRefused(400, "path: leaves your platform's folder")
        if not resolved.is_file():
            raise UploadRefused(404, f"path: no file {relative} in your platform's folder")
        size = resolved.stat().st_size
    except (OSError, ValueError) as exc:
        raise UploadRefused(400, f"path: cannot be resolved ({type(exc).__name__})") from exc
    if size > limit:
        raise UploadRefused(413, f"path: file larger than the limit of {limit} bytes")
    return resolved
