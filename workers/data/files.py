"""Getting files into the media root safely: bounded copies with a hash, atomic writes, and
submitted paths that cannot leave the root (no absolute paths, no `..`, no symlink pointing outside)."""
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


def resolve_in_root(root: Path, relative: str, limit: int) -> Path:
    """The regular file `relative` names inside `root`, or UploadRefused."""
    candidate = Path(relative)
    if not relative or candidate.is_absolute() or ".." in candidate.parts:
        raise UploadRefused(400, "path must be relative to the media root, without '..'")
    root = root.resolve()
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise UploadRefused(400, "path leaves the media root")
    if not resolved.is_file():
        raise UploadRefused(404, f"no file {relative} under the media root")
    if resolved.stat().st_size > limit:
        raise UploadRefused(413, f"file larger than the limit of {limit} bytes")
    return resolved
