"""Crash-safe snapshots: a directory per version, written aside, fsynced, renamed into place, checksummed.

Layout: ``<dir>/v00000007/{manifest.json, ids.npy, vectors.npy, [ann.faiss]}``. A snapshot is written
into ``<dir>/.tmp-...``, every file and the directory fsynced, then renamed to its final name (atomic on
POSIX) and the parent fsynced. The manifest holds a SHA-256 of every file and of itself, so a torn or
bit-rotted snapshot is detected on load and the newest good one wins. Older snapshots are pruned only
after the new one is durable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gallery.index.errors import IndexCorruptError, SnapshotNotFoundError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_PREFIX = "v"
_TMP_PREFIX = ".tmp-"

FileWriter = Callable[[Path], None]


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot on disk."""

    version: int
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        """Path of a file the manifest lists (and so verified); KeyError if it lists none such."""
        if name not in self.meta["files"]:
            raise KeyError(f"snapshot {self.path} has no {name}")
        return self.path / name


def snapshot_dir(directory: Path, version: int) -> Path:
    return directory / f"{_PREFIX}{version:08d}"


def versions_on_disk(directory: Path) -> list[int]:
    """Versions of the (finished, not necessarily valid) snapshots, newest first."""
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        name = entry.name
        if entry.is_dir() and name.startswith(_PREFIX) and name[len(_PREFIX):].isdigit():
            found.append(int(name[len(_PREFIX):]))
    return sorted(found, reverse=True)


def write_snapshot(directory: Path, version: int, writers: dict[str, FileWriter],
                   meta: dict[str, Any], keep: int) -> Path:
    """Write files via ``writers`` (name -> function writing that path) as snapshot ``version``."""
    directory.mkdir(parents=True, exist_ok=True)
    final = snapshot_dir(directory, version)
    if final.exists():
        raise FileExistsError(f"snapshot {final} already exists")
    tmp = directory / f"{_TMP_PREFIX}{final.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files = {}
        for name, write in writers.items():
            path = tmp / name
            write(path)
            _fsync(path)
            files[name] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
        body = {**meta, "version": version, "files": files}
        _write_manifest(tmp / MANIFEST, body)
        _fsync(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync(directory)
    _prune(directory, keep)
    return final


def read_latest(directory: Path) -> Snapshot:
    """The newest snapshot whose manifest and files all verify."""
    versions = versions_on_disk(directory)
    if not versions:
        raise SnapshotNotFoundError(f"no snapshot in {directory}")
    for version in versions:
        path = snapshot_dir(directory, version)
        try:
            return Snapshot(version, path, _verify(path, version))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping snapshot %s: %s", path, exc)
    raise IndexCorruptError(f"no snapshot in {directory} passes its checksum (tried {versions})")


def _verify(path: Path, version: int) -> dict[str, Any]:
    doc = json.loads((path / MANIFEST).read_text())
    body = doc["body"]
    if doc["sha256"] != _digest_json(body):
        raise ValueError("manifest checksum mismatch")
    if body["version"] != version:
        raise ValueError(f"manifest says version {body['version']}")
    for name, info in body["files"].items():
        file = path / name
        if file.stat().st_size != info["bytes"] or _sha256(file) != info["sha256"]:
            raise ValueError(f"{name} checksum mismatch")
    return body


def _write_manifest(path: Path, body: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump({"body": body, "sha256": _digest_json(body)}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _digest_json(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(directory: Path, keep: int) -> None:
    """Drop snapshots beyond the newest ``keep`` and temp dirs left by crashed writers."""
    for version in versions_on_disk(directory)[keep:]:
        shutil.rmtree(snapshot_dir(directory, version), ignore_errors=True)
    for entry in directory.iterdir():
        if entry.name.startswith(_TMP_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
