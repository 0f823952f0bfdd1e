"""API keys with roles. A key is a random secret shown once; the database keeps only its SHA-256,
so a leaked database does not leak working keys.

Roles: `platform` submits uploads and reads their jobs and reports; `rights_holder` registers,
lists and removes its own likenesses and reads findings about them; `admin` manages keys. The
key's `principal` is who it acts for: the platform's name, or the owner of the likenesses.

Uploader ids belong to the platform that sent them: a scan is decided for `<platform>:<uploader>`,
the platform being the key's principal, never a name the request supplies. Principals contain no
`:`, so that namespace is unambiguous and no platform's uploader can equal an owner's name.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from workers.data.db import ROLES, ApiKeyRow, Database, OwnerRow, now

KEY_PREFIX = "lk_"
SEPARATOR = ":"  # between a platform principal and its own uploader id
MAX_NAME = 200   # of a principal, and of an uploader id (the API's limits)


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    name: str


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str  # the only time the secret exists outside its owner's hands
    role: str
    principal: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def scan_uploader(platform: str, uploader: str) -> str:
    """The uploader a service scan is decided for: the platform's id in that platform's namespace, so
    that one platform can neither reuse another's authorisations nor pass itself off as an owner."""
    return f"{platform}{SEPARATOR}{uploader}"


def check_authorized_uploader(value: str) -> str:
    """A rights holder authorises one platform's user: `<platform principal>:<that platform's uploader id>`."""
    platform, separator, uploader = value.partition(SEPARATOR)
    if (not separator or not platform or not uploader or value != value.strip()
            or len(platform) > MAX_NAME or len(uploader) > MAX_NAME):
        raise ValueError(f"authorized uploader {value!r} must be '<platform>:<uploader id>', the platform's "
                         "name and its own id of the user, e.g. 'tube:user-17'")
    return value


class KeyStore:
    def __init__(self, db: Database):
        self.db = db

    def issue(self, role: str, principal: str, label: str = "") -> IssuedKey:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not principal.strip():
            raise ValueError("principal must not be empty")
        if SEPARATOR in principal:
            raise ValueError(f"principal must not contain {SEPARATOR!r}: it separates a platform from its uploader ids")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(id=secrets.token_hex(8), key_hash=hash_key(key), role=role, principal=principal,
                        label=label)
        with self.db.transaction() as s:
            s.add(row)
            if role == "rights_holder" and s.get(OwnerRow, principal) is None:
                s.add(OwnerRow(id=principal))
        return IssuedKey(row.id, key, role, principal)

    def authenticate(self, key: str) -> Principal | None:
        with self.db.session() as s:
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key),
                                                    ApiKeyRow.revoked_at.is_(None))).first()
        return Principal(row.id, row.role, row.principal) if row else None

    def active(self, key_id: str) -> Principal | None:
        """The principal of an unrevoked key, by its id (a console session holds the id, never the key)."""
        with self.db.session() as s:
            row = s.get(ApiKeyRow, key_id)
        return Principal(row.id, row.role, row.principal) if row is not None and row.revoked_at is None else None

    def list(self) -> list[ApiKeyRow]:
        with self.db.session() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))

    def revoke(self, key_id: str) -> datetime | None:
        """Revoke a key; returns when, or None if there is no such active key."""
        at = now()
        with self.db.transaction() as s:
            changed = s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                                .values(revoked_at=at))
        return at if changed.rowcount else None
