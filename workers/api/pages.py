"""Cursor pagination: a list answers `next_cursor`, an opaque token holding the sort key of the
page's last item (newest first: its time, then its id; a list sorted by a rank first, the rank too),
so the next page starts right after it even when newer items arrived meanwhile. The token is
base64url of a small JSON object."""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from gallery.store import utc
from workers.api.fields import ID_PATTERN

MAX_CURSOR = 500


def encode(at: datetime, last: Any, rank: float | None = None) -> str:
    """The cursor after an item sorted by (time, id) descending; `rank`: by (rank, time, id) descending."""
    key: dict[str, Any] = {"t": utc(at).isoformat(), "id": last}
    if rank is not None:
        key["r"] = rank
    body = json.dumps(key, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(cursor: str | None, id_type: type) -> tuple[datetime, Any] | None:
    """The (time, id) a cursor holds; 400 naming `cursor` for anything this service did not hand out."""
    key = _key(cursor, id_type, ranked=False)
    return None if key is None else (key[1], key[2])


def decode_ranked(cursor: str | None, id_type: type) -> tuple[float, datetime, Any] | None:
    """The (rank, time, id) of a cursor handed out by a list sorted by rank; 400 for anything else."""
    return _key(cursor, id_type, ranked=True)


def _key(cursor: str | None, id_type: type, ranked: bool) -> tuple[float, datetime, Any] | None:
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(raw["t"])
        last = raw["id"]
        if at.tzinfo is None or type(last) is not id_type:
            raise ValueError("not a cursor")
        if isinstance(last, str) and not re.fullmatch(ID_PATTERN, last) or \
                isinstance(last, int) and not 0 <= last < 2**31:
            raise ValueError("not an id")
        rank = raw.get("r")
        if ranked != (rank is not None) or rank is not None and (type(rank) is not float or not math.isfinite(rank)):
            raise ValueError("a cursor of another order")
        return (rank if rank is not None else 0.0), at.astimezone(UTC), last
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error) as exc:
        raise HTTPException(400, "cursor: not a cursor this service handed out (pass `next_cursor` as it "
                                 "came, or leave it out for the first page)") from exc


def moment(field: str, value: datetime | None) -> datetime | None:
    """A time filter as an aware UTC time (a time without offset is taken as UTC); 400 naming
    `field` for one that is not a time in UTC's range."""
    try:
        return None if value is None else utc(value).astimezone(UTC)
    except OverflowError as exc:
        raise HTTPException(400, f"{field}: out of range") from exc
