"""Request and response bodies of the HTTP API (they are also its OpenAPI documentation)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from gallery.store import utc

Role = Literal["admin", "platform", "rights_holder"]
Moment = Annotated[datetime, AfterValidator(utc)]  # always with its UTC offset, whatever the database


class ErrorBody(BaseModel):
    status: int
    reason: str = Field(description="What went wrong, in one line.")
    details: list[Any] | None = Field(None, description="Per-field problems of a request that failed validation.")


class ErrorOut(BaseModel):
    error: ErrorBody


class Progress(BaseModel):
    done_s: float = Field(description="Seconds of video scanned so far, over all segments.")
    total_s: float | None = Field(description="Duration of the video; null until the video was probed.")
    frames_done: int = Field(description="Frames sampled and analysed so far.")
    frames_total: int | None = Field(description="Frames the sampling interval calls for (scene cuts add a few).")
    fraction: float | None


class Webhook(BaseModel):
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    error: str | None


class JobOut(BaseModel):
    id: str = Field(description="The job's id; the same as `job_id`, kept for clients that read `id` (deprecated: "
                                "read `job_id`).", json_schema_extra={"deprecated": True})
    job_id: str = Field(description="The job's id, for GET /v1/jobs/{job_id}; the webhook's `job_id`.")
    scan_id: str | None = Field(description="scan jobs: the scan's id for /v1/scans/{scan_id}/... (the job's id).")
    kind: Literal["scan", "enroll", "remove"]
    status: Literal["queued", "running", "done", "failed", "deleted"] = Field(
        description="deleted: a scan deleted for good (DELETE /v1/scans/{id} or the retention period); only "
                    "this record of it is left.")
    error: str | None = Field(description="Why the job failed; set only when status is failed.")
    result: dict[str, Any] | None = Field(description="scan: verdict and number of findings; enroll: identity id "
                                                      "and accepted/rejected references (a character also: "
                                                      "face_references, image_references, played_by); remove: "
                                                      "removed id and evidence_scans_cleared (scans whose "
                                                      "evidence images of it were deleted).")
    progress: Progress | None = Field(description="scan jobs only.")
    gallery_version: int | None = Field(description="Gallery version the scan was decided against.")
    attempts: int
    webhook: Webhook | None
    created_at: Moment
    updated_at: Moment
    finished_at: Moment | None


class ScanItem(BaseModel):
    scan_id: str
    status: Literal["queued", "running", "done", "failed", "deleted"]
    uploader: str | None = Field(description="Your id of the uploader, as sent; null once the scan was deleted.")
    verdict: Literal["allow", "label", "review", "restrict", "block"] | None = Field(
        description="The verdict's action; set only when status is done.")
    created_at: Moment
    finished_at: Moment | None
    error: str | None = Field(description="Why the scan failed; set only when status is failed.")


class ScanPage(BaseModel):
    items: list[ScanItem]
    total: int = Field(description="Scans matching the filter, over every page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class KeyIn(BaseModel):
    role: Role
    principal: str = Field(min_length=1, max_length=200, pattern=r"^[^:/\\\x00-\x1f\x7f]+$",
                           description="Who the key acts for: the platform's name or the rights holder (owner). "
                                       "Without ':', which separates a platform from its uploader ids, and without "
                                       "'/', '\\' or control characters: a platform's principal names its folder "
                                       "of the media root; not '.' or '..'.")
    label: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("principal")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("'.' and '..' name no folder")
        return value


class KeyOut(BaseModel):
    id: str
    role: Role
    principal: str
    label: str
    created_at: Moment
    revoked_at: Moment | None


class IssuedKeyOut(BaseModel):
    id: str
    key: str = Field(description="The secret; shown only in this response.")
    role: Role
    principal: str


AUTHORIZED_UPLOADERS = ("Uploaders always allowed to use this likeness, each as '<platform>:<uploader id>': the "
                        "platform's principal and its own id of the user (e.g. 'tube:user-17'). List your own "
                        "accounts on each platform here: a platform cannot upload as the owner.")
MATCH_THRESHOLD = ("kind person only: a stricter cosine-similarity threshold (-1 to 1) for this likeness alone, for "
                   "one known to be confused with look-alikes; it only ever raises the service's threshold.")


class LikenessOut(BaseModel):
    id: str
    name: str
    kind: Literal["person", "character"]
    owner: str
    policy: str
    authorized_uploaders: list[str] = Field(description="Ids registered before uploaders were namespaced by "
                                                        "platform (no ':') match no platform's scan any more.")
    match_threshold: float | None = Field(description="This likeness's own threshold; null: the service's.")
    references: int


class LikenessPatch(BaseModel):
    """Only the fields sent change; `match_threshold: null` goes back to the service's threshold."""

    model_config = ConfigDict(extra="forbid")
    policy: str | None = Field(None, description="One of allow, ai_if_labelled, no_ai, no_use.")
    authorized_uploaders: list[str] | None = Field(None, description=f"Replaces the list. {AUTHORIZED_UPLOADERS}")
    match_threshold: float | None = Field(None, description=MATCH_THRESHOLD)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirmed", "dismissed"] = Field(description="confirmed: it is this person, and the finding "
                                                                    "stands; dismissed: it is not, or the use is "
                                                                    "allowed.")
    reason: str = Field(max_length=40, description="For confirmed: impersonation, unauthorised_use or "
                                                   "confirmed_other; for dismissed: not_this_person (a look-alike, "
                                                   "shown to the likeness's owner), authorised or dismissed_other.")
    comment: str = Field(min_length=1, max_length=2000, description="Why, in a sentence: the audit trail keeps it.")


class ReferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: int = Field(0, ge=0, lt=3, description="Which evidence image of the finding (the number ending its "
                                                  "`image` URL).")


class DecisionOut(BaseModel):
    id: int
    finding_id: int
    decision: Literal["confirmed", "dismissed"]
    reason: str
    comment: str
    decided_by: str = Field(description="The principal of the key (or console session) that decided.")
    decided_at: Moment
    webhook: Webhook | None = Field(description="finding.decided to the scan's callback URL; null without one.")


class FindingOut(BaseModel):
    id: int
    scan_id: str
    identity_id: str
    category: str
    action: str
    confidence: float
    similarity: float
    start_s: float
    end_s: float
    created_at: Moment
    detail: dict[str, Any] = Field(description="The finding as in the report: evidence (each with an `image` URL "
                                               "when one was stored), `images` (available, count, reason), reasons, "
                                               "tracks.")
    decision: DecisionOut | None = Field(None, description="The reviewer's current decision (the newest); null "
                                                           "while undecided.")


class ReviewItem(FindingOut):
    uploader: str | None = Field(description="The platform's id of the uploader, as sent with the scan.")


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    total: int = Field(description="Findings waiting for review that match the filter, over every page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class Health(BaseModel):
    database: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]
