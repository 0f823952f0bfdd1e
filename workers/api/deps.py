"""Who is calling: the API key (header X-API-Key, or Authorization: Bearer) and the roles a route needs."""
from __future__ import annotations

from celery import Celery
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from workers.data.keys import Principal
from workers.service import Service

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key issued by an admin.")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


def service(request: Request) -> Service:
    return request.app.state.service


def sender(request: Request) -> Celery:
    return request.app.state.sender


def principal(request: Request, api_key: str | None = Security(_key_header),
              bearer: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
    key = api_key or (bearer.credentials if bearer else None)
    if not key:
        raise HTTPException(401, "missing API key (header X-API-Key or Authorization: Bearer)")
    found = service(request).keys.authenticate(key)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key")
    return found


def require(*roles: str):
    """A dependency that admits only keys with one of `roles`."""

    def check(who: Principal = Depends(principal)) -> Principal:
        if who.role not in roles:
            raise HTTPException(403, f"this needs a {' or '.join(roles)} key, not a {who.role} key")
        return who

    return check
