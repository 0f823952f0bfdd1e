"""API keys with roles. A key is a random secret shown once; the database keeps only its SHA-256,
so a leaked database does not leak working keys.

Roles: `platform` submits uploads and reads their jobs and reports; `rights_holder` registers,
lists and removes its own likenesses and reads findings about them; `admin` manages keys. The
key's `principal` is who it acts for: the platform's name, or the owner of the likenesses.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from workers.db import ROLES, ApiKeyRow, Database, OwnerRow, now

KEY_PREFIX = "lk_"


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


class KeyStore:
    def __init__(self, db: Database):
        self.db = db

    def issue(self, role: str, principal: str, label: str = "") -> IssuedKey:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not principal.strip():
            raise ValueError("principal must not be empty")
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
