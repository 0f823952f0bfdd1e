"""Console sessions: an API key exchanged for a signed, expiring cookie, and the CSRF token of each
session.

The cookie holds the key's id (never the key) and the session's CSRF token, signed with the
console secret (itsdangerous, with the time it was signed, so it expires). Every request looks
the key up again: revoking the key ends its sessions at the next request. Every POST form carries
the session's CSRF token, compared in constant time; the cookie is HttpOnly and SameSite=Lax, and
Secure when the console is served over https.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from workers.data.keys import Principal

COOKIE = "likeness_console"
PATH = "/console"


@dataclass(frozen=True)
class Session:
    csrf: str
    key_id: str | None = None  # None: not signed in yet (the sign-in form's own CSRF token)


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: the key's principal and the session carrying it."""

    principal: Principal
    session: Session

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def name(self) -> str:
        return self.principal.name


class SignInRequired(Exception):
    """No session, an expired one, or its key was revoked: the console shows the sign-in page."""


class Sessions:
    def __init__(self, secret: str | None, max_age_s: float):
        self._serializer = URLSafeTimedSerializer(secret or secrets.token_urlsafe(32), salt="likeness-console")
        self.max_age_s = max_age_s

    @staticmethod
    def new(key_id: str | None = None) -> Session:
        """A fresh session: a new CSRF token at every sign-in, so one from before it is worthless."""
        return Session(csrf=secrets.token_urlsafe(32), key_id=key_id)

    def read(self, request: Request) -> Session | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie or len(cookie) > 1000:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # tampered, expired or signed by another secret
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        key_id = data.get("k")
        return Session(csrf=data["c"], key_id=key_id if isinstance(key_id, str) else None)

    def write(self, request: Request, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"c": session.csrf, "k": session.key_id})
        response.set_cookie(COOKIE, value, max_age=int(self.max_age_s), path=PATH, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    @staticmethod
    def clear(request: Request, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https")


def sessions(request: Request) -> Sessions:
    return request.app.state.console_sessions


def viewer(request: Request) -> Viewer:
    """The signed-in person (a dependency of every console page); SignInRequired otherwise."""
    session = sessions(request).read(request)
    if session is None or session.key_id is None:
        raise SignInRequired()
    principal = request.app.state.service.keys.active(session.key_id)
    if principal is None or principal.role not in ("platform", "rights_holder"):
        raise SignInRequired()  # revoked since: the session ends here
    return Viewer(principal, session)


def check_csrf(session: Session | None, token: str | None) -> None:
    """403 unless `token` is this session's CSRF token."""
    if session is None or not token or not hmac.compare_digest(session.csrf.encode(), token.encode()):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page and try again")


def require_role(who: Viewer, role: str) -> None:
    """A page of the other role answers 404, as the API does for what a key may not see."""
    if who.role != role:
        raise HTTPException(404, "no such page")
