"""Request and response bodies of the HTTP API (they are also its OpenAPI documentation)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from workers.db import utc

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
    id: str
    kind: Literal["scan", "enroll", "remove"]
    status: Literal["queued", "running", "done", "failed"]
    error: str | None = Field(description="Why the job failed; set only when status is failed.")
    result: dict[str, Any] | None = Field(description="scan: verdict and number of findings; enroll: identity id "
                                                      "and accepted/rejected references (a character also: "
                                                      "face_references, image_references, played_by); remove: "
                                                      "removed id.")
    progress: Progress | None = Field(description="scan jobs only.")
    gallery_version: int | None = Field(description="Gallery version the scan was decided against.")
    attempts: int
    webhook: Webhook | None
    created_at: Moment
    updated_at: Moment
    finished_at: Moment | None


class KeyIn(BaseModel):
    role: Role
    principal: str = Field(min_length=1, max_length=200,
                           description="Who the key acts for: the platform's name or the rights holder (owner).")
    label: str = Field("", max_length=200)


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


class LikenessOut(BaseModel):
    id: str
    name: str
    kind: Literal["person", "character"]
    owner: str
    policy: str
    authorized_uploaders: list[str]
    references: int


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
    detail: dict[str, Any] = Field(description="The finding as in the report: evidence, reasons, tracks.")


class Health(BaseModel):
    database: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]
