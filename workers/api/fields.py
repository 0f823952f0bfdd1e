"""Checks of client text at the edge, before anything is written: every field that reaches the
database or the file system is refused with 400 naming the field when it holds control characters
(NUL among them, which PostgreSQL cannot store) or is too long; ids in URLs have a fixed shape."""
from __future__ import annotations

import hashlib

from fastapi import HTTPException

from workers.data.files import CONTROL

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # job, scan, identity and key ids (hex) in URLs and queries
MAX_KEY = 300  # jobs.idempotency_key


def text(field: str, value: str | None, max_length: int = 200) -> str | None:
    """`value` unchanged when it is fit to store; 400 `<field>: ...` otherwise."""
    if value is None:
        return None
    if CONTROL.search(value):
        raise HTTPException(400, f"{field}: must not contain control characters (NUL, newline, ...)")
    if len(value) > max_length:
        raise HTTPException(400, f"{field}: longer than {max_length} characters")
    return value


def texts(field: str, values: list[str] | None, max_length: int = 200) -> None:
    for value in values or ():
        text(field, value, max_length)


def idempotency_key(value: str) -> str:
    """A stored idempotency key: as it is while it fits the column, else its principal and a digest
    (long principals, uploader ids and client keys together can exceed it)."""
    if len(value) <= MAX_KEY:
        return value
    principal = value.split(":", 1)[0]
    return f"{principal}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"
