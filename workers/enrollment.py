"""Registration of a likeness as a job: the reference files staged by the API, and the check that
makes a repeated enrollment task adopt the identity its first run created instead of adding another."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from gallery.enroll import EnrollmentResult
from gallery.store import IdentityRow, ReferenceRow
from workers.db import Database, utc


def staged_files(job_params: dict) -> list[tuple[Path, str]]:
    """(stored path, name the client gave) of each reference, in upload order."""
    folder = Path(job_params["files_dir"])
    return [(folder / f["stored"], f["name"]) for f in job_params["files"]]


def enrollment_summary(enrollment: EnrollmentResult, names: dict[Path, str]) -> dict:
    return {"accepted": [names.get(a.path, a.path.name) for a in enrollment.accepted],
            "rejected": [{"file": names.get(r.path, r.path.name), "reason": r.reason} for r in enrollment.rejected]}


def already_enrolled(db: Database, owner: str, name: str, sha256s: set[str], since: datetime) -> str | None:
    """The identity an earlier run of the same job registered: same owner and name, created since the
    job was, with exactly these reference images."""
    with db.session() as s:
        candidates = s.scalars(select(IdentityRow).where(IdentityRow.owner == owner, IdentityRow.name == name))
        for identity in candidates:
            if utc(identity.created_at) < utc(since):
                continue
            stored = set(s.scalars(select(ReferenceRow.sha256).where(ReferenceRow.identity_id == identity.id)))
            if stored == sha256s:
                return identity.id
    return None
