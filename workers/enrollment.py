"""Registration of a likeness: the character enrollment shared by the CLI and the service, and, for
the service, the job that registers from the reference files staged by the API, with the check that
makes a repeated enrollment task adopt the identity its first run created instead of adding another."""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gallery.characters import CharacterEnrollment, ReferenceImage, reference_images
from gallery.enroll import EnrollmentResult, RejectedReference
from workers.data.db import JobRow
from workers.data.jobs import JobFailed
from workers.runtime import Runtime


@dataclass(frozen=True)
class CharacterReferences:
    """A character's references enrolled for both paths: usable faces for the face index, CLIP crops of
    every still and clip frame for the image index."""

    images: list[ReferenceImage]
    faces: EnrollmentResult
    crops: CharacterEnrollment
    rejected: list[RejectedReference]  # unreadable files, and images no crop could be taken from

    @property
    def sha256s(self) -> set[str]:
        return {a.sha256 for a in self.faces.accepted} | {r.sha256 for r in self.crops.references}


def enroll_character(runtime: Runtime, files: Sequence[Path], frames_dir: Path,
                     face: str | int | None) -> CharacterReferences:
    """Stills as they are, clips as a few frames written under `frames_dir` (which must outlive the
    registration: the gallery copies them), each embedded by both embedders."""
    images, unreadable = reference_images(files, frames_dir, runtime.character_config, runtime.settings.scan.sampling)
    faces = runtime.enroller.enroll([i.path for i in images], face=face)
    crops = runtime.character_enroller.enroll(images, face=face)
    return CharacterReferences(images, faces, crops, unreadable + crops.rejected)


# -- the service's enrollment job -----------------------------------------------------------------

def staged_files(job_params: dict) -> list[tuple[Path, str]]:
    """(stored path, name the client gave) of each reference, in upload order."""
    folder = Path(job_params["files_dir"])
    return [(folder / f["stored"], f["name"]) for f in job_params["files"]]


def enrollment_summary(enrollment: EnrollmentResult, names: dict[Path, str]) -> dict:
    """The CLI's words, each reference named as uploaded ("clip.mp4@12.50s" for a still of a clip)."""
    by_stored = {path.name: name for path, name in names.items()}

    def label(reference) -> str:
        if reference.path in names:
            return names[reference.path]
        clip, _, at = reference.label.rpartition("@")
        return f"{by_stored.get(clip, clip)}@{at}"

    summary = {"accepted": [label(a) for a in enrollment.accepted],
               "rejected": [{"file": names.get(r.path, r.path.name), "reason": r.reason} for r in enrollment.rejected]}
    if enrollment.clips:
        summary["clips"] = [{**c, "clip": by_stored.get(Path(c["clip"]).name, Path(c["clip"]).name)}
                            for c in enrollment.clips]
    return summary


def _no_reference(rejected: list[dict]) -> JobFailed:
    reasons = "; ".join(f"{r['file']}: {r['reason']}" for r in rejected)
    return JobFailed(f"no reference image accepted ({reasons})")


def register_person(runtime: Runtime, job: JobRow) -> dict:
    """Enroll the job's faces and register the likeness; the job's result."""
    params = job.params
    files = staged_files(params)
    with tempfile.TemporaryDirectory(prefix="likeness-frames-") as frames_dir:  # stills of reference clips
        enrollment = runtime.enroller.enroll([path for path, _ in files], face=params.get("face"),
                                             frames_dir=Path(frames_dir))
        summary = enrollment_summary(enrollment, dict(files))
        if not enrollment.accepted:
            raise _no_reference(summary["rejected"])
        if params.get("identity_id"):  # more references for a registered person (a confirmed appearance)
            try:
                added = runtime.gallery.add_references(params["identity_id"], job.principal, enrollment)
            except KeyError as exc:
                raise JobFailed(f"likeness {params['identity_id']} was removed meanwhile") from exc
            return {"identity_id": params["identity_id"], "references_added": len(added), **summary}
        identity_id = None
        if job.attempts > 1:
            identity_id = runtime.gallery.store.registered_since(
                job.principal, params["name"], {a.sha256 for a in enrollment.accepted}, job.created_at)
        if identity_id is None:
            identity_id = runtime.gallery.add(params["name"], params["kind"], job.principal, params["policy"],
                                              params["authorized_uploaders"], enrollment,
                                              match_threshold=params.get("match_threshold")).id  # absent in older jobs
    return {"identity_id": identity_id, **summary}


def register_character(runtime: Runtime, job: JobRow) -> dict:
    """Enroll the job's stills and clips as `likeness gallery add --kind character` does and register
    the character with its cast; the job's result, in the CLI's words, references named as uploaded."""
    params = job.params
    names = dict(staged_files(params))
    with tempfile.TemporaryDirectory(prefix="likeness-frames-") as frames_dir:
        refs = enroll_character(runtime, list(names), Path(frames_dir), params.get("face"))
        labels = {i.path: _label(i, names) for i in refs.images} | names
        summary = {"accepted": sorted({labels[r.image.path] for r in refs.crops.references}),
                   "rejected": [{"file": labels.get(r.path, r.path.name), "reason": r.reason} for r in refs.rejected],
                   "face_references": [labels[a.path] for a in refs.faces.accepted],
                   "image_references": len(refs.crops.references)}
        if not refs.crops.references:
            raise _no_reference(summary["rejected"])
        identity_id = None
        if job.attempts > 1:
            identity_id = runtime.gallery.store.registered_since(job.principal, params["name"], refs.sha256s,
                                                                 job.created_at)
        if identity_id is None:
            try:
                identity_id = runtime.character_gallery.add(
                    runtime.gallery, params["name"], job.principal, params["policy"], params["authorized_uploaders"],
                    refs.faces, refs.crops, params.get("played_by", [])).id
            except ValueError as exc:  # an actor removed since the API checked it
                raise JobFailed(str(exc)) from exc
    played_by = [a.name for a in runtime.character_gallery.cast(identity_id)]
    return {"identity_id": identity_id, **summary, "played_by": played_by}


def _label(image: ReferenceImage, names: dict[Path, str]) -> str:
    """A reference as the client named it; a clip's frames with their time in the clip."""
    name = names.get(image.source, image.source.name)
    return name if image.t_s is None else f"{name}@{image.t_s:.2f}s"
